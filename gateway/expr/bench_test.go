package expr

import "testing"

func BenchmarkEval(b *testing.B) {
	cases := []struct{ name, src string }{
		{"variable", `@(context.Variables.GetValueOrDefault<string>("x"))`},
		{"header split", `@(context.Request.Headers.GetValueOrDefault("Authorization","").Split(' ')[1])`},
		{"block", `@{
			var code = context.Response.StatusCode;
			string tier = (string)context.Variables["x"];
			if (code >= 500) {
				return "retry";
			} else if (tier == "hello" && context.Variables.ContainsKey("n")) {
				return "premium";
			} else {
				return "default";
			}
		}`},
	}
	env := &Env{Context: newTestContext()}
	for _, tc := range cases {
		p, err := Compile(tc.src, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Eval(env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestConcurrentEval(t *testing.T) {
	p, err := Compile(`@{ var s = ""; foreach (var x in new[] {1, 2, 3}) { s += x; } return s + context.Variables["x"]; }`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			env := &Env{Context: newTestContext()}
			for j := 0; j < 200; j++ {
				v, err := p.Eval(env)
				if err == nil && v.String() != "123hello" {
					t.Errorf("got %q", v.String())
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
