package wire

// IgnoreDeadLetterLogging marks messages that may reach an actor that has
// stopped (a shard that went idle, a grain that moved, a node that is going
// away) as normal: protoactor logs no dead-letter line for them.
func (*Deliver) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Deliver.IgnoreDeadLetterLogging].
func (*Publish) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Deliver.IgnoreDeadLetterLogging].
func (*Ack) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Deliver.IgnoreDeadLetterLogging].
func (*Register) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Deliver.IgnoreDeadLetterLogging].
func (*MemberJoin) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Deliver.IgnoreDeadLetterLogging].
func (*MemberLeave) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Deliver.IgnoreDeadLetterLogging].
func (*Unregister) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [Deliver.IgnoreDeadLetterLogging].
func (*Check) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: a node may serve no users (cluster.Users counts
// it as not answering).
func (*UserSend) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [UserSend.IgnoreDeadLetterLogging].
func (*UserDisconnect) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: see [UserSend.IgnoreDeadLetterLogging].
func (*UserSessionsRequest) IgnoreDeadLetterLogging() {}

// IgnoreDeadLetterLogging: a node may not serve channels, or be stopping.
func (*TopicMsg) IgnoreDeadLetterLogging() {}
