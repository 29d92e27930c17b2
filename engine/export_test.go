package engine

// RootfsLocal is the local source name a root filesystem folder is synced as,
// for the external tests that look at a daemon's state.
var RootfsLocal = rootfsLocal
