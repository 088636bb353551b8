package testbed

// SetCrashAfterLinks makes Deploy stop dead after n created links.
func SetCrashAfterLinks(o *Options, n int) { o.crashAfterLinks = n }

var ErrCrashed = errCrashed

var TempNames = tempNames
