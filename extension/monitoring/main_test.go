package monitoring

import "flag"

var (
	update = flag.Bool("update", false, "rewrite golden files")
	// outage is how long Log Analytics is down in TestOutageLosesNothing:
	// the issue asks for 2 minutes; -short uses 3s unless set.
	outage = flag.Duration("outage", 0, "outage length in TestOutageLosesNothing (default 2m, 3s with -short)")
)
