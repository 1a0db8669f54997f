package policy

import (
	"strings"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	t.Parallel()
	srv := newSideServer(t)
	send := func(v, path string) string {
		return `<send-request response-variable-name="` + v + `" timeout="5"><set-url>` + srv.URL + path + `</set-url></send-request>`
	}
	tests := []struct {
		name     string
		wait     string
		onError  string
		maxTime  time.Duration
		wantVars map[string]string // variable -> body, "" for unset
		wantCode int               // 0: no error
	}{
		{name: "all runs calls in parallel", wait: `<wait for="all">` + send("a", "/echo") + send("b", "/echo") + send("c", "/fast") + `</wait>`,
			maxTime: 2 * time.Second, wantVars: map[string]string{"a": `"method":"GET"`, "b": `"method":"GET"`, "c": "fast"}},
		{name: "all with a choose child", wait: `<wait>` + send("a", "/fast") + `<choose><when condition="@(true)"><set-variable name="x" value="chosen" />` + send("b", "/echo") + `</when></choose></wait>`,
			maxTime: 2 * time.Second, wantVars: map[string]string{"a": "fast", "b": `"method":"GET"`}},
		{name: "any completes with the first call", wait: `<wait for="any">` + send("slow", "/slow") + send("fast", "/fast") + `</wait>`,
			maxTime: time.Second, wantVars: map[string]string{"fast": "fast", "slow": ""}},
		{name: "any from an expression", wait: `<wait for="@("any")">` + send("slow", "/slow") + send("fast", "/fast") + `</wait>`,
			maxTime: time.Second, wantVars: map[string]string{"fast": "fast", "slow": ""}},
		{name: "a failed call goes to on-error", wait: `<wait>` + send("a", "/fast") + `<send-request response-variable-name="b" timeout="0.2"><set-url>` + srv.URL + `/slow</set-url></send-request></wait>`,
			maxTime: time.Second, wantCode: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := runDoc(t, `<policies><inbound>`+tc.wait+`</inbound><backend /><on-error /></policies>`, nil, nil)
			if d := time.Since(start); d > tc.maxTime {
				t.Errorf("took %v, want under %v", d, tc.maxTime)
			}
			if tc.wantCode != 0 {
				if r.LastError == nil || r.Ctx.Response.StatusCode() != tc.wantCode {
					t.Errorf("status %d, LastError %+v", r.Ctx.Response.StatusCode(), r.LastError)
				}
				return
			}
			if r.LastError != nil {
				t.Fatalf("LastError %+v", r.LastError)
			}
			for name, want := range tc.wantVars {
				v, ok := exprVars{r}.Get(name)
				if want == "" {
					if ok {
						t.Errorf("variable %s is set, want unset", name)
					}
					continue
				}
				resp, isResp := v.Obj().(*sentResponse)
				if !ok || !isResp || !strings.Contains(string(resp.body), want) {
					t.Errorf("variable %s = %v, want a response with %q", name, v, want)
				}
			}
		})
	}
}

// TestWaitParallel shows the calls overlap: three calls that each wait
// for the same release finish together.
func TestWaitParallel(t *testing.T) {
	t.Parallel()
	srv := newSideServer(t)
	// The calls are answered only once all three are under way at the
	// same time; run one after another, each would wait its 2 s out.
	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for srv.slowIn.Load() < 3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		close(srv.release)
	}()
	doc := `<policies><inbound><wait for="all">`
	for _, v := range []string{"a", "b", "c"} {
		doc += `<send-request response-variable-name="` + v + `"><set-url>` + srv.URL + `/slow</set-url></send-request>`
	}
	doc += `</wait></inbound><backend /></policies>`
	start := time.Now()
	r := runDoc(t, doc, nil, nil)
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("took %v: the calls did not run in parallel", d)
	}
	for _, v := range []string{"a", "b", "c"} {
		if val, ok := (exprVars{r}).Get(v); !ok || val.Obj() == nil {
			t.Errorf("variable %s not set", v)
		}
	}
}
