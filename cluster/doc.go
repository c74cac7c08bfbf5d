// Package cluster spreads wsactor rooms over several nodes with protoactor-go's
// remote and cluster (a nested module, so those dependencies stay out of the
// root module). docs/cluster.md has the design, the failover figures and
// deployment.
//
// A [Node] is one cluster member ([Start]). A room is a cluster grain
// (kind [Kind], identity = room name, placed by protoactor's disthash) that
// connections on any node join with [Room.Join]:
//
//	node, _ := cluster.Start(system, cluster.Config{Name: "chat", NewProvider: newEtcdProvider})
//	lobby := node.Room("lobby")
//	err := lobby.Join(ctx, conn, &cluster.JoinOptions{Meta: "alice"}) // off the actor: it waits for the grain
//	_ = lobby.Publish(&cluster.Broadcast{Data: msg, Except: conn.PID()})
//
// # Fan-out
//
// Each node has one shard per room with members there: a local room of
// package room, which owns the node's members (watched: a connection that
// stops leaves) and puts one shared transport.Frame into each member's
// queue. A broadcast goes from its node's shard to the grain, and from the
// grain once to each shard with members: one network message per node, one
// frame (compressed at most once) per node. [Node.Stats] counts both.
//
// # Failures
//
// A node that dies takes its connections with it; grains drop its members
// when their watch of its shard reports AddressTerminated. A room whose grain
// was on it is re-activated on a survivor, rebuilt from the shards'
// registrations, and the broadcasts published on survivors meanwhile are
// replayed and deduplicated; members' connection actors receive [*RoomMoved].
//
// # Channel topics
//
// [Node.Channels] makes a channel.Hub's topics cluster-wide
// (channel.Options.Cluster): each topic has an owner node (rendezvous
// ranking of the live members) running its behaviour, history and
// presence, and a backup node holding a copy of its history, acknowledged
// before any event reaches a member; a new owner continues the backup's
// stream, so clients recover across the owner's death.
//
// # Users of channel hubs
//
// A node that serves a channel.Hub calls [Node.ServeUsers] with it; the
// [Users] it returns reaches a user's sessions on every node: SendUser,
// DisconnectUser and Sessions ask each member (in parallel, one request
// each) and add up the answers; nodes that do not answer in time are named
// in an error wrapping [ErrPartial].
//
// # Concurrency
//
// Node and Room methods are safe from any goroutine. Publish and Leave never
// block; Join and Members wait for the room's grain, bounded by their ctx.
// Grain and shard state is touched only by their own actors.
package cluster
