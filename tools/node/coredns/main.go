// CoreDNS with only the plugins a test node's cluster DNS uses (tests/harness/node): it
// answers for the cluster's Services and pods from the API server (kubernetes) and
// nothing else (no forward: the rig reaches nothing outside the machine). CoreDNS's own
// main links every plugin, cloud providers' among them; this one builds in a fraction
// of the time.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	coremain.Run()
}
