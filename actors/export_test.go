package actors

// SetInboxWaitHook makes every connection's reader call f when it is about
// to wait for room in its inbox, with the messages and bytes the inbox holds.
// restore removes the hook.
func SetInboxWaitHook(f func(c *Conn, msgs, bytes int)) (restore func()) {
	inboxWaitHook.Store(&f)
	return func() { inboxWaitHook.Store(nil) }
}

// ReaderTurnBound is readerTurnMessages, for the external tests.
const ReaderTurnBound = readerTurnMessages
