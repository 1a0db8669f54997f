package policyxml

import "testing"

// benchPolicy is a typical policy: 40 lines, expressions in attributes and
// text, raw quotes and '<' inside them, a multi-line block with a comment.
const benchPolicy = `<!-- Route by tenant and cache the token. -->
<policies>
    <inbound>
        <base />
        <set-variable name="tenant" value="@(context.Request.Headers.GetValueOrDefault("X-Tenant", "default"))" />
        <set-variable name="body" value="@{
            // Keep the body readable for the backend as well.
            var body = context.Request.Body.As<JObject>(preserveContent: true);
            return body["id"]?.ToString() ?? "";
        }" />
        <cache-lookup-value key="@("token-" + (string)context.Variables["tenant"])" variable-name="token" />
        <choose>
            <when condition="@(!context.Variables.ContainsKey("token") && context.Request.Method != "GET")">
                <send-request mode="new" response-variable-name="tokenResponse" timeout="20" ignore-error="false">
                    <set-url>https://login.example.com/{{tenant-id}}/oauth2/token</set-url>
                    <set-method>POST</set-method>
                    <set-header name="Content-Type" exists-action="override">
                        <value>application/x-www-form-urlencoded</value>
                    </set-header>
                    <set-body>@($"client_id={{client-id}}&resource={Uri.EscapeDataString("https://api")}")</set-body>
                </send-request>
                <set-variable name="token" value="@((string)((IResponse)context.Variables["tokenResponse"]).Body.As<JObject>()["access_token"])" />
                <cache-store-value key="@("token-" + (string)context.Variables["tenant"])" value="@((string)context.Variables["token"])" duration="3600" />
            </when>
            <when condition="@(context.Request.Url.Query.GetValueOrDefault(&quot;v&quot;, &quot;1&quot;) == &quot;2&quot;)">
                <set-backend-service base-url="https://v2.example.com" />
            </when>
        </choose>
        <set-header name="Authorization" exists-action="override">
            <value>@("Bearer " + (string)context.Variables["token"])</value>
        </set-header>
        <rate-limit-by-key calls="100" renewal-period="60" counter-key="@(context.Subscription?.Key ?? "anonymous")" />
    </inbound>
    <backend><forward-request timeout="30" /></backend>
    <outbound><base /></outbound>
    <on-error>
        <return-response><set-status code="500" reason="Error" /></return-response>
    </on-error>
</policies>`

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPolicy)))
	for b.Loop() {
		if _, err := Parse(benchPolicy); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBenchPolicy keeps the benchmark input honest: it must parse and hold
// the expressions it is meant to exercise.
func TestBenchPolicy(t *testing.T) {
	t.Parallel()
	root, err := Parse(benchPolicy)
	if err != nil {
		t.Fatal(err)
	}
	attrs, text := countExprs(root)
	if attrs != 9 || text != 2 {
		t.Errorf("expressions: %d in attributes, %d in text, want 9 and 2", attrs, text)
	}
}
