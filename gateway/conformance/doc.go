// Package conformance holds the gateway's conformance suite: behaviours
// that Microsoft's API Management documentation states for policies and
// policy expressions, each written down by us as a case in testdata/ (the
// documentation page it comes from, the fact in our words, a policy, the
// requests and the documented result) and checked end to end through a
// real gateway listener and a real loopback backend.
//
// The suite is the measurement asked for by the policy issue: how many
// documented behaviours the gateway reproduces. A case the gateway is known
// not to meet carries a knownGap reason; the suite then requires that it
// still fails, so a fix is noticed and the gap removed.
package conformance
