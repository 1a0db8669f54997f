package policy

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/config"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy/counters"
	"github.com/seed393f6fe3/apim-arc-gateway/gateway/proxy"
)

const corpusDir = "../../../shared/corpora/apim-policies"

var (
	corpusNamedValue = regexp.MustCompile(`\{\{\s*([A-Za-z0-9._-]+)\s*\}\}`)
	// Some corpus files are lab templates: deployment scripts replace
	// tokens such as {backend-id} before upload, so such attribute values
	// are given a concrete value here, as the deployment would.
	corpusBackendID     = regexp.MustCompile(`backend-id="([^"@]+)"`)
	corpusFragment      = regexp.MustCompile(`fragment-id="([^"@]+)"`)
	corpusTemplateToken = regexp.MustCompile(`="\{[A-Za-z0-9_-]+\}"`)
)

// TestCorpus compiles every public policy document of the corpus with the
// engine, as a load would, and reports how much of real-world policy runs:
// documents that compile, documents rejected (with why), and the policies
// skipped as unsupported.
func TestCorpus(t *testing.T) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("corpus not found at %s", corpusDir)
	}
	var files []string
	_ = filepath.WalkDir(corpusDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".xml") {
			files = append(files, p)
		}
		return nil
	})
	docs, compiled, rejected := 0, 0, 0
	pool := proxy.NewPool(proxy.Options{})
	reasons := map[string]int{}
	skipped := map[string]int{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := corpusTemplateToken.ReplaceAllString(string(raw), `="1"`)
		if !strings.Contains(src, "<policies") {
			continue // fragments and snippets without a document root
		}
		docs++
		// Named values are the users'; give each reference a value.
		snap := &config.Snapshot{SchemaVersion: config.SchemaVersion}
		seen := map[string]bool{}
		for _, m := range corpusNamedValue.FindAllStringSubmatch(src, -1) {
			if !seen[strings.ToLower(m[1])] {
				seen[strings.ToLower(m[1])] = true
				// "1" reads as a number inside expressions
				// (`<= {{weight}}`) and as text elsewhere.
				snap.NamedValues = append(snap.NamedValues, config.NamedValue{Name: m[1], Properties: config.NamedValueProperties{DisplayName: m[1], Value: "1"}})
			}
		}
		// So are the backends and fragments a document names; the corpus
		// holds the policies, not the rest of each service.
		for _, m := range corpusBackendID.FindAllStringSubmatch(src, -1) {
			snap.Backends = append(snap.Backends, config.Backend{Name: m[1], Properties: config.BackendProperties{URL: "https://backend.example"}})
		}
		for _, m := range corpusFragment.FindAllStringSubmatch(src, -1) {
			snap.PolicyFragments = append(snap.PolicyFragments, config.PolicyFragment{Name: m[1], Properties: config.PolicyFragmentProperties{Value: "<fragment />"}})
		}
		set := NewSet(snap, Options{Counters: counters.NewMemory(nil), Client: pool.Client})
		set.Compile(Location{Scope: ScopeAPI, Name: filepath.Base(f)}, src)
		for _, w := range set.Warnings {
			skipped[w.Policy]++
		}
		if err := set.Err(); err != nil {
			rejected++
			ce := err.(*CompileError)
			for _, is := range ce.Issues {
				reasons[reasonKey(is)]++
				if testing.Verbose() {
					t.Logf("    %s: %s", filepath.Base(f), is)
				}
			}
			continue
		}
		compiled++
	}
	t.Logf("corpus: %d documents, %d compile (%.1f%%), %d rejected", docs, compiled, 100*float64(compiled)/float64(max(docs, 1)), rejected)
	for _, kv := range top(reasons, 15) {
		t.Logf("  rejected: %4d  %s", kv.n, kv.k)
	}
	for _, kv := range top(skipped, 25) {
		t.Logf("  skipped policy: %4d  <%s>", kv.n, kv.k)
	}
	if docs == 0 {
		t.Fatal("no policy documents found")
	}
	// The floor is what this version reaches (79.8% on 2026-11-29, the
	// rest being expression constructs outside the subset and documents
	// that are wrong for APIM too); it may only go up.
	if float64(compiled)/float64(docs) < 0.79 {
		t.Errorf("only %d of %d corpus documents compile", compiled, docs)
	}
}

// reasonKey groups issues by policy and the start of the message.
func reasonKey(is Issue) string {
	msg := is.Message
	if i := strings.IndexAny(msg, "\"'"); i > 0 {
		msg = msg[:i]
	}
	if len(msg) > 90 {
		msg = msg[:90]
	}
	return "<" + is.Policy + "> " + msg
}

type kv struct {
	k string
	n int
}

func top(m map[string]int, n int) []kv {
	var out []kv
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n > out[j].n || out[i].n == out[j].n && out[i].k < out[j].k })
	if len(out) > n {
		out = out[:n]
	}
	return out
}
