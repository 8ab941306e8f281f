package transport

// UnderWine lets the external tests skip what Wine does not do.
func UnderWine() bool { return underWine() }
