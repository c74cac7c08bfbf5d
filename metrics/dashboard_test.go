package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/wsactor/wsactor/actors"
	"github.com/wsactor/wsactor/metrics"
)

// The sample Grafana dashboard and docs/operations.md name only metrics the
// collectors export: a rename here fails there.
func TestDashboardAndDocsUseExportedNames(t *testing.T) {
	names := map[string]bool{}
	descs := make(chan *prometheus.Desc, 64)
	metrics.NewHubCollector(nil, "x").Describe(descs) // the Hub's include the Handler's
	metrics.NewProcessCollector().Describe(descs)
	metrics.NewRegistryCollector(nil, "x").Describe(descs)
	sc := metrics.NewSystemCollector(actors.NewSystem(zerolog.Nop()))
	sc.Describe(descs)
	sc.Close()
	close(descs)
	fq := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range descs {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	if len(names) < 10 {
		t.Fatalf("only %d metric names described", len(names))
	}
	metricRef := regexp.MustCompile(`wsactor_[a-z_]+`)
	// known says whether ref is a name exported here: a histogram's series
	// carry a suffix; the cluster module's names are checked by its own
	// test (cluster/metrics_test.go).
	known := func(ref string) bool {
		ref = strings.TrimSuffix(ref, "_")
		if names[ref] || strings.HasPrefix(ref, "wsactor_cluster_") {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(ref, suffix); ok && names[base] {
				return true
			}
		}
		return false
	}

	b, err := os.ReadFile("../docs/grafana/wsactor.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	used := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, ref := range metricRef.FindAllString(tg.Expr, -1) {
				used++
				if !known(ref) {
					t.Errorf("panel %q queries %s, which no collector exports", p.Title, ref)
				}
			}
		}
	}
	if used == 0 {
		t.Fatal("the dashboard queries no wsactor metric")
	}

	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range metricRef.FindAllString(string(doc), -1) {
		if !known(ref) {
			t.Errorf("docs/operations.md names %s, which no collector exports", ref)
		}
	}
	for n := range names {
		if !strings.Contains(string(doc), n) {
			t.Errorf("docs/operations.md does not describe %s", n)
		}
	}
}
