package expr

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func repr(v Value) string {
	switch v.k {
	case KJObject, KJArray, KArray, KDict, KJProperty:
		return toJSON(v, false)
	case KNull:
		return "<null>"
	}
	return toString(v)
}

func run(t *testing.T, src string) (Value, error) {
	t.Helper()
	p, err := Compile(src, Options{})
	if err != nil {
		return Null, err
	}
	return p.Eval(&Env{Context: newTestContext(), Now: func() time.Time { return fixedNow }})
}

type evalCase struct {
	name string
	src  string
	want string
}

func checkCases(t *testing.T, cases []evalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := run(t, tc.src)
			if err != nil {
				t.Fatalf("%s: %v", tc.src, err)
			}
			if got := repr(v); got != tc.want {
				t.Fatalf("%s\n got  %q\n want %q", tc.src, got, tc.want)
			}
		})
	}
}

func TestLiteralsAndOperators(t *testing.T) {
	checkCases(t, []evalCase{
		{"int", `@(42)`, "42"},
		{"long suffix", `@(42L * 2)`, "84"},
		{"double", `@(1.5 + 1)`, "2.5"},
		{"int division", `@(7 / 2)`, "3"},
		{"modulo", `@(7 % 3)`, "1"},
		{"string escapes", `@("a\tb\"c\u0041")`, "a\tb\"cA"},
		{"verbatim", `@(@"c:\dir ""q""")`, `c:\dir "q"`},
		{"char", `@('x')`, "x"},
		{"bool", `@(true && !false)`, "True"},
		{"null", `@(null)`, "<null>"},
		{"concat", `@("n=" + 5 + true)`, "n=5True"},
		{"concat null", `@("a" + null)`, "a"},
		{"comparison", `@(3 > 2 && 2 <= 2 && 1 != 2)`, "True"},
		{"string equality", `@("abc" == "abc")`, "True"},
		{"coalesce", `@((string)null ?? "def")`, "def"},
		{"ternary", `@(1 > 2 ? "a" : "b")`, "b"},
		{"nested ternary", `@(1 > 2 ? "a" : 2 > 1 ? "c" : "d")`, "c"},
		{"unary minus", `@(-(3 - 5))`, "2"},
		{"interpolation", `@($"x={1 + 1}, s={"q"}")`, "x=2, s=q"},
		{"interpolation format", `@($"{3.14159:F2}|{7:D3}|{{lit}}")`, "3.14|007|{lit}"},
		{"verbatim interpolation", `@($@"p\{1}")`, `p\1`},
		{"hex", `@(0x1F)`, "31"},
		{"bitwise or enum", `@((int)(RegexOptions.IgnoreCase | RegexOptions.Multiline))`, "3"},
		{"comment in expr", "@(1 /* one */ + 2 // two\n)", "3"},
		{"is null", `@(context.Variables["x"] is null)`, "False"},
		{"is type", `@(context.Variables["x"] is string)`, "True"},
		{"as type", `@((context.Variables["n"] as string) ?? "none")`, "none"},
		{"default", `@(default(int))`, "0"},
		{"double format", `@(0.1 + 0.2)`, "0.30000000000000004"},
	})
}

func TestContextMembers(t *testing.T) {
	checkCases(t, []evalCase{
		{"variable indexer cast", `@((string)context.Variables["x"])`, "hello"},
		{"GetValueOrDefault string", `@(context.Variables.GetValueOrDefault<string>("x"))`, "hello"},
		{"GetValueOrDefault missing", `@(context.Variables.GetValueOrDefault<string>("nope", "dflt"))`, "dflt"},
		{"GetValueOrDefault int missing", `@(context.Variables.GetValueOrDefault<int>("nope"))`, "0"},
		{"GetValueOrDefault bool", `@(context.Variables.GetValueOrDefault<bool>("flag"))`, "True"},
		{"GetValueOrDefault untyped", `@(context.Variables.GetValueOrDefault("n", 0))`, "5"},
		{"ContainsKey", `@(context.Variables.ContainsKey("x") && !context.Variables.ContainsKey("y"))`, "True"},
		{"header", `@(context.Request.Headers.GetValueOrDefault("content-type", ""))`, "application/json"},
		{"header multi", `@(context.Request.Headers.GetValueOrDefault("X-Multi"))`, "1,2"},
		{"header default", `@(context.Request.Headers.GetValueOrDefault("X-None", "d"))`, "d"},
		{"header indexer", `@(context.Request.Headers["X-Multi"][1])`, "2"},
		{"header split", `@(context.Request.Headers.GetValueOrDefault("Authorization","").Split(' ')[0])`, "Bearer"},
		{"method", `@(context.Request.Method)`, "POST"},
		{"url parts", `@(context.Request.Url.Scheme + "://" + context.Request.Url.Host + context.Request.Url.Path)`, "https://api.contoso.com/orders/42"},
		{"url port", `@(context.Request.OriginalUrl.Port)`, "443"},
		{"url tostring", `@(context.Request.Url.ToString())`, "https://api.contoso.com/orders/42?a=1&b=x&b=y"},
		{"query", `@(context.Request.Url.Query.GetValueOrDefault("b", ""))`, "x,y"},
		{"querystring", `@(context.Request.Url.QueryString)`, "?a=1&b=x&b=y"},
		{"ToUri", `@(context.Request.OriginalUrl.ToUri().AbsolutePath)`, "/orders/42"},
		{"ip", `@(context.Request.IpAddress)`, "10.1.2.3"},
		{"matched", `@(context.Request.MatchedParameters["id"])`, "42"},
		{"matched GetValueOrDefault", `@(context.Request.MatchedParameters.GetValueOrDefault("zz", "none"))`, "none"},
		{"body string", `@(context.Request.Body.As<string>(preserveContent: true).Length > 10)`, "True"},
		{"body jobject", `@(context.Request.Body.As<JObject>(preserveContent: true)["name"].ToString())`, "widget"},
		{"body jobject value", `@(context.Request.Body.As<JObject>()["qty"].Value<int>() + 1)`, "4"},
		{"response status", `@(context.Response.StatusCode)`, "404"},
		{"response reason", `@(context.Response.StatusReason)`, "Not Found"},
		{"response body jarray", `@(context.Response.Body.As<JArray>().Count)`, "3"},
		{"IResponse cast", `@(((IResponse)context.Variables["backendResp"]).Body.As<JObject>()["token"].ToString())`, "t1"},
		{"IResponse status", `@(((IResponse)context.Variables["backendResp"]).StatusCode == 200)`, "True"},
		{"api", `@(context.Api.Id + "/" + context.Api.Name + "/" + context.Api.Path + "/" + context.Api.Version)`, "orders-api/Orders/orders/v1"},
		{"operation", `@(context.Operation.Id + " " + context.Operation.Method + " " + context.Operation.UrlTemplate)`, "get-order GET /orders/{id}"},
		{"product", `@(context.Product.Name)`, "Starter"},
		{"subscription", `@(context.Subscription.Id + context.Subscription.Key + context.Subscription.PrimaryKey + context.Subscription.SecondaryKey)`, "sub1k1k1k2"},
		{"user groups", `@(string.Join(",", context.User.Groups.Select(g => g.Id)))`, "admins,devs"},
		{"user null-conditional", `@(context.User?.Email)`, "u@contoso.com"},
		{"deployment", `@(context.Deployment.Region + "|" + context.Deployment.ServiceName + "|" + context.Deployment.GatewayId)`, "West Europe|contoso-apim|gw1"},
		{"requestid", `@(context.RequestId.ToString().Length)`, "36"},
		{"timestamp", `@(context.Timestamp.ToString("yyyy-MM-dd"))`, "2024-05-17"},
		{"elapsed", `@(context.Elapsed.TotalMilliseconds)`, "1500"},
		{"lasterror", `@(context.LastError.Source + ":" + context.LastError.Reason + ":" + context.LastError.Message + ":" + context.LastError.Section)`, "validate-jwt:TokenExpired:expired:inbound"},
		{"variables json", `@(((JObject)context.Variables["obj"])["a"]["b"].ToString())`, "c"},
		{"null conditional index", `@(((JObject)context.Variables["obj"])["zz"]?["b"]?.ToString() ?? "missing")`, "missing"},
	})
}

func TestKeylessContext(t *testing.T) {
	p, err := Compile(`@(context.User == null && context.Subscription?.Id == null)`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := newTestContext()
	ctx.user, ctx.sub = nil, nil
	v, err := p.Eval(&Env{Context: ctx})
	if err != nil || repr(v) != "True" {
		t.Fatalf("got %v %v", repr(v), err)
	}
}

func TestTraceAndVariableWrite(t *testing.T) {
	p, err := Compile(`@{ context.Trace("src", "msg"); context.Variables["w"] = "v"; return context.Variables["w"]; }`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := newTestContext()
	v, err := p.Eval(&Env{Context: ctx})
	if err != nil || repr(v) != "v" || len(ctx.traces) != 1 || ctx.traces[0].message != "msg" {
		t.Fatalf("got %v %v %+v", repr(v), err, ctx.traces)
	}
}

func TestBodyConsumed(t *testing.T) {
	p, err := Compile(`@{ var a = context.Request.Body.As<string>(); return context.Request.Body.As<string>(); }`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Eval(&Env{Context: newTestContext()})
	if err != nil || repr(v) != "" {
		t.Fatalf("body should be consumed without preserveContent, got %q %v", repr(v), err)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
		line, col       int
	}{
		{"statement lambda", `@(new[]{1}.Any(x => { return true; }))`, "lambda with statement body is not supported", 1, 21},
		{"unknown method on string", `@("abc".Foo())`, "unknown method Foo on string", 1, 9},
		{"unknown method", `@(context.Variables.Frobnicate())`, "unknown method Frobnicate", 1, 21},
		{"unknown static", `@(Convert.ToFoo("x"))`, "unknown static method Convert.ToFoo", 1, 11},
		{"unknown identifier", `@(foo + 1)`, `unknown identifier "foo"`, 1, 3},
		{"unknown context member", `@(context.Foo)`, "unknown member context.Foo", 1, 11},
		{"missing return", "@{\n var x = 1;\n}", "not all code paths return a value", 3, 1},
		{"if without else", `@{ if (true) { return 1; } }`, "not all code paths return a value", 1, 28},
		{"return without value", `@{ if (true) { return; } return 1; }`, "return must have a value", 1, 16},
		{"unterminated string", `@("abc)`, "unterminated string literal", 1, 3},
		{"not an expression", `context.Request`, "expression must start with @( or @{", 1, 1},
		{"typeof", `@(typeof(string))`, "typeof is not supported", 1, 3},
		{"trailing tokens", `@(1) 2`, "unexpected literal after end of expression", 1, 6},
		{"new unknown type", `@(new Foo())`, "new Foo is not supported", 1, 7},
		{"invalid statement", `@{ 1 + 2; return 1; }`, "only assignment, call, increment and decrement can be used as a statement", 1, 4},
		{"duplicate local", `@{ var a = 1; var a = 2; return a; }`, `a local named "a" is already defined`, 1, 19},
		{"catch when", `@{ try { return 1; } catch (Exception e) when (true) { return 2; } }`, "exception filters (catch when) are not supported", 1, 42},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.src, Options{})
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got %v", err)
			}
			if !strings.Contains(ce.Msg, tc.want) || ce.Line != tc.line || ce.Col != tc.col {
				t.Fatalf("got %d:%d %q, want %d:%d %q", ce.Line, ce.Col, ce.Msg, tc.line, tc.col, tc.want)
			}
		})
	}
}

func TestRuntimeErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"missing variable", `@((string)context.Variables["nope"])`, "the given key 'nope' was not present"},
		{"null member", `@(context.Variables.GetValueOrDefault<string>("nope").Length)`, "object reference not set"},
		{"index out of range", `@("a b".Split(' ')[5])`, "index was outside the bounds"},
		{"divide by zero", `@(1 / 0)`, "divide by zero"},
		{"bad cast", `@((JObject)context.Variables["x"])`, "unable to cast string to JObject"},
		{"bad json", `@(JObject.Parse("{nope"))`, "invalid JSON"},
		{"throw", `@{ throw new Exception("boom"); }`, "boom"},
		{"substring range", `@("abc".Substring(5))`, "startIndex cannot be larger"},
		{"infinite loop", `@{ while (true) { } }`, "step limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, tc.src)
			var re *RuntimeError
			if !errors.As(err, &re) || !strings.Contains(re.Msg, tc.want) {
				t.Fatalf("got %v, want runtime error containing %q", err, tc.want)
			}
		})
	}
}
