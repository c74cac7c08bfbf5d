// Package channel is wsactor's application layer: topics that clients join,
// with history and recovery after a reconnect, pushes answered by replies,
// presence, a user index and rate limits, over a documented protocol
// (docs/channels-protocol.md) with a browser client and a Go client. It is
// what Phoenix Channels, Socket.IO rooms or Centrifugo give, built on
// wsactor's actors and rooms, with compress-once fan-out underneath.
//
// A Hub is the server: an http.Handler whose every connection is an actor
// (a session) and whose topics are rooms (package room).
//
//	hub, err := channel.NewHub(system, &channel.Options{
//		Authenticate: func(r *http.Request) (channel.Identity, error) {
//			user, err := checkToken(r.URL.Query().Get("token"))
//			return channel.Identity{User: user, Meta: map[string]string{"name": user}}, err
//		},
//		Topics: func(name string) *channel.TopicOptions {
//			return &channel.TopicOptions{ClientPublish: true, Presence: true, History: 50}
//		},
//	})
//	mux.Handle("/ws", hub)
//	mux.Handle("/wsactor/", http.StripPrefix("/wsactor/", channel.ClientHandler()))
//
// # Topics
//
// A topic is a room whose behaviour is this package's: it numbers and keeps
// the events published to it (TopicOptions.History, HistoryTTL), answers
// joins with the history a client asks for or missed, tracks presence, and
// runs your behaviour (TopicOptions.Handler) on the same actor, one message
// at a time: *Push for a client's push, *Joined and *Left, *room.Tick at
// TickInterval, and whatever else is sent to the topic's PID. A game room is
// a topic whose behaviour keeps the world and broadcasts a keyed snapshot per
// tick through Topic.Room. Topics are made on first use (a join, or
// Hub.Publish) and stop after TopicOptions.IdleTimeout without members.
//
// Topic.Publish keeps an event and sends it to every member as one shared
// frame (encoded, and compressed with permessage-deflate, once). Topic.Broadcast
// sends one that is not kept. Hub.Publish does the same from any goroutine.
//
// # Payloads and encodings
//
// A payload is JSON or bytes: []byte given to Publish, Reply or Request is a
// bytes payload, json.RawMessage is JSON as is, anything else is
// marshalled to JSON. Clients speak the JSON encoding (Subprotocol; bytes
// travel as base64) or the binary one (SubprotocolBinary; raw), and may
// share topics: a broadcast is encoded once per encoding in use.
//
// # Recovery
//
// Every kept event has an offset in its topic's stream; the stream has an
// epoch, a random string made when the topic starts. A client that joins
// again with the last position it applied gets exactly the events it
// missed, in order, with recovered=true; or recovered=false and the reason
// (another epoch: the topic restarted and its history is gone; expired: some
// of the missed events are no longer kept; ahead: a position the topic never
// reached), and reloads. The epoch changes whenever history is lost, never
// silently. The join reply, the recovered events, the presence state and
// everything the topic sends after the join reach the client in that order.
//
// Hub.Shutdown closes every connection (1001) and keeps the topics; after
// Hub.Reopen clients reconnect and recover what was published meanwhile.
//
// # Several nodes
//
// With Options.Cluster (package cluster's Node.Channels) the topics span the
// nodes of a cluster with the same API and clients: each topic's behaviour,
// history and presence run on one owner node, its history is replicated to
// a second node before any event reaches a member or is acknowledged, and
// members join from whatever node they are connected to. When the owner
// dies, the next node continues the same stream (same epoch and offsets):
// members are told "left" with reason "stopped", rejoin, and recover. See
// Cluster and docs/cluster.md.
//
// # Clients
//
// The browser client is one dependency-free ES module (channel/client/,
// served by ClientHandler, with TypeScript declarations). Dial is the Go
// client, an actor like actors.Dial: Client.Join returns a Subscription whose
// Handler gets the join's history and then the live events, Push waits for the
// reply, presence is applied for you. Both reconnect with jittered backoff,
// rejoin every topic with the last position they applied, drop duplicates by
// offset, and keep pushes made while offline in a bounded buffer.
//
// # Failures and bad input
//
// A request that cannot be served is answered with an error reply (a code
// from docs/channels-protocol.md, or your own through Errorf) and the
// connection stays. A panic in a topic's behaviour answers the push with
// "internal" and counts against TopicOptions.HandlerPanic (see
// room.Options.BehaviorPanic). Only protocol violations and abuse close a
// connection: a binary message (1003), a message over the read limit
// (1009), AbuseLimit malformed messages (4400) or rate-limited requests
// (4429) within a minute.
//
// # Concurrency
//
// A session's state (memberships, pending requests, limits) belongs to its
// actor; a topic's (history, presence, your behaviour's fields) to the
// topic's actor. Hub's methods are safe from any goroutine; Topic's only
// inside the topic's behaviour, as room.State's.
package channel
