package server

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// swapSnapshot is a configuration whose revision and one API change on
// every swap while /stable stays served by the same backend.
func swapSnapshot(addr string, n int) string {
	return fmt.Sprintf(`{"schemaVersion": "1.0", "revision": "r%d",
	 "apis": [
	  {"name": "stable", "properties": {"path": "stable", "serviceUrl": "http://%s"},
	   "operations": [{"name": "get", "properties": {"method": "GET", "urlTemplate": "/{id}"}}]},
	  {"name": "churn-%d", "properties": {"path": "churn%d", "serviceUrl": "http://%s", "subscriptionRequired": false},
	   "operations": [{"name": "get", "properties": {"method": "GET", "urlTemplate": "/*"}}]}],
	 "products": [{"name": "p", "apis": ["stable"]}],
	 "subscriptions": [{"name": "s", "properties": {"scope": "/products/p", "primaryKey": "swap-key-%04d", "secondaryKey": "steady-key-0001"}}]}`,
		n, addr, n, n, addr, n)
}

// Hot reload under load: 100 configuration swaps while clients keep
// calling; not one request may fail.
func TestReloadUnderLoadLosesNothing(t *testing.T) {
	be := startBackend(t, nil)
	h := startGateway(t, swapSnapshot(be.addr, 0), nil)

	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	c := client()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req := fmt.Sprintf("%s/stable/%d-%d", h.url, w, i)
				resp, err := c.Get(req + "?subscription-key=steady-key-0001")
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("status %d", resp.StatusCode))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for n := 1; n <= 100; n++ {
		writeSnapshot(t, h.dir, swapSnapshot(be.addr, n))
		// Reload directly too: file events are debounced, and the test
		// wants exactly 100 distinct swaps.
		if err := h.g.Reload(); err != nil {
			t.Fatalf("swap %d: %v", n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()

	if got := h.g.metrics.reloads.Load(); got < 101 {
		t.Errorf("%d configurations applied, want 101", got)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), failed.Load()+ok.Load(), firstFailure.Load())
	}
	if ok.Load() < 200 {
		t.Errorf("only %d requests ran during the swaps; the test did not exercise concurrency", ok.Load())
	}
	// The last configuration is the one serving: its churn API and key.
	if r := do(t, "GET", h.url+"/churn100/x", nil, nil); r.status != 200 {
		t.Errorf("latest API not served: %d", r.status)
	}
	if r := do(t, "GET", h.url+"/churn99/x", nil, nil); r.status != 404 {
		t.Errorf("API removed by the latest configuration still served: %d", r.status)
	}
	if r := do(t, "GET", h.url+"/stable/x?subscription-key=swap-key-0100", nil, nil); r.status != 200 {
		t.Errorf("latest key not accepted: %d", r.status)
	}
	if r := do(t, "GET", h.url+"/stable/x?subscription-key=swap-key-0099", nil, nil); r.status != 401 {
		t.Errorf("replaced key still accepted: %d", r.status)
	}
	if n := be.connections(); n > 8+4 {
		t.Errorf("backend saw %d connections for 8 clients: connection pools were not kept across swaps", n)
	}
}

// A bad snapshot never replaces a good one, and the log names the paths of
// every problem.
func TestBadSnapshotKeepsServing(t *testing.T) {
	be := startBackend(t, nil)
	h := startGateway(t, snapshotFor(be.addr), nil)
	if r := do(t, "GET", h.url+"/free/x", nil, nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	bad := strings.Replace(snapshotFor(be.addr), `"scope": "/products/starter"`, `"scope": "/products/gold"`, 1)
	bad = strings.Replace(bad, `"path": "other"`, `"path": "echo"`, 1)
	writeSnapshot(t, h.dir, bad)
	waitFor(t, "the rejection in the log", func() bool {
		return strings.Contains(h.logs.String(), "configuration rejected")
	})
	logs := h.logs.String()
	mustContain(t, "rejection log", logs, `$.subscriptions[0].properties.scope`, `$.apis[4].properties.path`)
	if r := do(t, "GET", h.url+"/free/x", nil, nil); r.status != 200 {
		t.Errorf("after a bad snapshot: status %d, want the old configuration serving", r.status)
	}
	if r := do(t, "GET", h.url+StatusPath, nil, nil); r.status != 200 {
		t.Errorf("health %d after a bad snapshot; the old configuration is still good", r.status)
	}
	if h.g.metrics.reloadFailures.Load() == 0 {
		t.Error("reload failure not counted")
	}
	// Not JSON at all.
	writeSnapshot(t, h.dir, "{ not json")
	if err := h.g.Reload(); err == nil {
		t.Error("Reload accepted a broken document")
	}
	if r := do(t, "GET", h.url+"/free/x", nil, nil); r.status != 200 {
		t.Errorf("after a broken document: status %d", r.status)
	}
}
