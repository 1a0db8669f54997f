package expr

import "testing"

func TestStringMethods(t *testing.T) {
	checkCases(t, []evalCase{
		{"Contains", `@("hello".Contains("ell"))`, "True"},
		{"StartsWith EndsWith", `@("hello".StartsWith("he") && "hello".EndsWith("lo"))`, "True"},
		{"Substring", `@("hello".Substring(1, 3) + "hello".Substring(3))`, "elllo"},
		{"Split char", `@("a,b,,c".Split(',').Length)`, "4"},
		{"Split options", `@("a,b,,c".Split(new[] {','}, StringSplitOptions.RemoveEmptyEntries).Length)`, "3"},
		{"Split string array", `@("a--b--c".Split(new string[] {"--"}, StringSplitOptions.None)[2])`, "c"},
		{"Replace", `@("a-b-c".Replace("-", "+"))`, "a+b+c"},
		{"ToLower ToUpper", `@("AbC".ToLower() + "AbC".ToUpperInvariant())`, "abcABC"},
		{"Trim", `@("  x ".Trim() + "|" + "xxyxx".TrimStart('x') + "|" + "a/".TrimEnd('/'))`, "x|yxx|a"},
		{"IndexOf", `@("hello".IndexOf("l") + "hello".LastIndexOf("l"))`, "5"},
		{"Length", `@("héllo".Length)`, "5"},
		{"Equals ignore case", `@("ABC".Equals("abc", StringComparison.OrdinalIgnoreCase))`, "True"},
		{"Equals ordinal", `@("ABC".Equals("abc"))`, "False"},
		{"PadLeft", `@("7".PadLeft(3, '0'))`, "007"},
		{"string.Format", `@(string.Format("{0}-{1:D2}", "a", 5))`, "a-05"},
		{"string.Join", `@(string.Join("|", new List<string> { "a", "b" }))`, "a|b"},
		{"String.IsNullOrEmpty", `@(String.IsNullOrEmpty("") && string.IsNullOrWhiteSpace(" ") && !string.IsNullOrEmpty("a"))`, "True"},
		{"string.Concat", `@(string.Concat("a", 1, true))`, "a1True"},
		{"string.Empty", `@(string.Empty.Length)`, "0"},
		{"char indexer", `@("abc"[1])`, "b"},
		{"ToString on int", `@(42.ToString())`, "42"},
		{"int format", `@((1234.5).ToString("N1"))`, "1,234.5"},
	})
}

func TestParseAndConvert(t *testing.T) {
	checkCases(t, []evalCase{
		{"int.Parse", `@(int.Parse("41") + 1)`, "42"},
		{"long.Parse", `@(long.Parse("9000000000"))`, "9000000000"},
		{"double.Parse", `@(double.Parse("1.25") * 2)`, "2.5"},
		{"bool.Parse", `@(bool.Parse("True"))`, "True"},
		{"TryParse out var", `@{ if (int.TryParse("12", out var n)) { return n * 2; } return -1; }`, "24"},
		{"TryParse fails", `@{ int n; return int.TryParse("x", out n) ? n : -1; }`, "-1"},
		{"casts", `@((int)3.9 + (long)2 + (int)'A')`, "70"},
		{"double cast", `@((double)1 / 4)`, "0.25"},
		{"Convert base64", `@(Convert.ToBase64String(Encoding.UTF8.GetBytes("user:pw")))`, "dXNlcjpwdw=="},
		{"Convert from base64", `@(Encoding.UTF8.GetString(Convert.FromBase64String("dXNlcjpwdw==")))`, "user:pw"},
		{"Convert.ToInt32", `@(Convert.ToInt32("17") + Convert.ToInt32(2.5))`, "19"},
		{"Convert.ToString", `@(Convert.ToString(5))`, "5"},
		{"Convert.ToBoolean", `@(Convert.ToBoolean("false"))`, "False"},
		{"fully qualified", `@(System.Text.Encoding.UTF8.GetBytes("abc").Length)`, "3"},
		{"Math", `@(Math.Max(3, Math.Min(10, 7)) + Math.Abs(-2))`, "9"},
		{"Math round", `@(Math.Round(2.5) + Math.Round(1.234, 1) + Math.Floor(1.7) + Math.Ceiling(1.2))`, "6.2"},
		{"Guid", `@(Guid.NewGuid().ToString().Length)`, "36"},
		{"Uri escape", `@(Uri.EscapeDataString("a b&c") + "|" + Uri.UnescapeDataString("a%20b"))`, "a%20b%26c|a b"},
		{"WebUtility", `@(WebUtility.UrlEncode("a b") + "|" + WebUtility.UrlDecode("a+b%21") + "|" + WebUtility.HtmlEncode("<a>"))`, "a+b|a b!|&lt;a&gt;"},
		{"Regex.IsMatch", `@(Regex.IsMatch("ABC-123", "^[a-z]+-\\d+$", RegexOptions.IgnoreCase))`, "True"},
		{"Regex.Match groups", `@(Regex.Match("id=42;", @"id=(?<id>\d+)").Groups["id"].Value)`, "42"},
		{"Regex.Replace", `@(Regex.Replace("a1b2", @"\d", "#"))`, "a#b#"},
		{"BitConverter", `@(BitConverter.ToString(Encoding.UTF8.GetBytes("AB")))`, "41-42"},
		{"char static", `@(char.IsDigit('5'))`, "True"},
	})
}

func TestDateTime(t *testing.T) {
	checkCases(t, []evalCase{
		{"UtcNow o", `@(DateTime.UtcNow.ToString("o"))`, "2024-05-17T14:03:07.0000000Z"},
		{"custom format", `@(DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ"))`, "2024-05-17T14:03:07Z"},
		{"rfc1123", `@(DateTime.UtcNow.ToString("r"))`, "Fri, 17 May 2024 14:03:07 GMT"},
		{"AddSeconds", `@(DateTime.UtcNow.AddSeconds(60).AddMinutes(1).AddHours(1).AddDays(1).ToString("s"))`, "2024-05-18T15:05:07"},
		{"DateTimeOffset unix", `@(DateTimeOffset.UtcNow.ToUnixTimeSeconds())`, "1715954587"},
		{"Parse and compare", `@(DateTime.Parse("2024-01-01T00:00:00Z") < DateTime.UtcNow)`, "True"},
		{"subtract", `@((DateTime.UtcNow - DateTime.Parse("2024-05-17T14:00:00Z")).TotalSeconds)`, "187"},
		{"TimeSpan", `@(TimeSpan.FromMinutes(2).TotalSeconds + TimeSpan.FromMilliseconds(500).TotalSeconds)`, "120.5"},
		{"TimeSpan ToString", `@(TimeSpan.FromSeconds(3661).ToString())`, "01:01:01"},
		{"FromUnixTimeSeconds", `@(DateTimeOffset.FromUnixTimeSeconds(0).ToString("yyyy"))`, "1970"},
		{"interpolated date", `@($"{DateTime.UtcNow:yyyyMMdd}")`, "20240517"},
	})
}

func TestJSON(t *testing.T) {
	checkCases(t, []evalCase{
		{"parse and index", `@(JObject.Parse("{\"a\":{\"b\":[1,2,3]}}")["a"]["b"][2].ToString())`, "3"},
		{"Value<string>", `@(JObject.Parse("{\"a\":\"x\"}").Value<string>("a"))`, "x"},
		{"cast string", `@((string)JObject.Parse("{\"a\":5}")["a"])`, "5"},
		{"cast int", `@((int)JObject.Parse("{\"a\":5}")["a"] + 1)`, "6"},
		{"missing is null", `@(JObject.Parse("{}")["zz"] == null)`, "True"},
		{"new JObject", `@(new JObject(new JProperty("a", 1), new JProperty("b", "x")).ToString(Formatting.None))`, `{"a":1,"b":"x"}`},
		{"initializer", `@(new JObject { ["k"] = "v", ["n"] = 2 }.ToString(Formatting.None))`, `{"k":"v","n":2}`},
		{"indented", `@(new JObject(new JProperty("a", new JArray(1, 2))).ToString())`, "{\n  \"a\": [\n    1,\n    2\n  ]\n}"},
		{"JArray parse count", `@(JArray.Parse("[1,2,3]").Count)`, "3"},
		{"add remove", `@{ var o = new JObject(); o.Add("a", 1); o["b"] = "x"; o.Remove("a"); o.Add(new JProperty("c", true)); return o.ToString(Formatting.None); }`, `{"b":"x","c":true}`},
		{"Property", `@(JObject.Parse("{\"a\":1}").Property("a").Name)`, "a"},
		{"Properties", `@(string.Join(",", JObject.Parse("{\"a\":1,\"b\":2}").Properties().Select(p => p.Name)))`, "a,b"},
		{"SelectToken", `@(JObject.Parse("{\"a\":{\"b\":[{\"c\":7}]}}").SelectToken("$.a.b[0].c").ToString())`, "7"},
		{"Type", `@(JObject.Parse("{\"a\":null,\"b\":[]}")["b"].Type == JTokenType.Array)`, "True"},
		{"order preserved", `@(JObject.Parse("{\"z\":1,\"a\":2}").ToString(Formatting.None))`, `{"z":1,"a":2}`},
		{"SerializeObject", `@(JsonConvert.SerializeObject(new { a = 1, b = "x" }))`, `{"a":1,"b":"x"}`},
		{"double json", `@(new JObject(new JProperty("p", 2.0)).ToString(Formatting.None))`, `{"p":2.0}`},
		{"foreach JObject", `@{ var s = ""; foreach (var p in JObject.Parse("{\"a\":1,\"b\":2}")) { s += p.Key + p.Value; } return s; }`, "a1b2"},
		{"body modify", `@{ var body = context.Request.Body.As<JObject>(preserveContent: true); body["qty"] = 10; body.Remove("tags"); return body.ToString(Formatting.None); }`, `{"name":"widget","qty":10,"price":9.5,"nested":{"ok":true}}`},
	})
}

func TestLinqAndCollections(t *testing.T) {
	checkCases(t, []evalCase{
		{"Any", `@(new[] {1, 2, 3}.Any(x => x > 2))`, "True"},
		{"All", `@(new[] {1, 2, 3}.All(x => x > 2))`, "False"},
		{"Where Select ToArray", `@(string.Join(",", new[] {1, 2, 3, 4}.Where(x => x % 2 == 0).Select(x => x * 10).ToArray()))`, "20,40"},
		{"First", `@(new[] {"a", "bb"}.First(s => s.Length == 2))`, "bb"},
		{"FirstOrDefault", `@(new[] {"a"}.FirstOrDefault(s => s == "z") ?? "none")`, "none"},
		{"Count", `@(new List<string> { "a", "b" }.Count(s => s == "a"))`, "1"},
		{"Contains", `@(new[] {"a", "b"}.Contains("b"))`, "True"},
		{"OrderBy", `@(string.Join("", new[] {"c", "a", "b"}.OrderBy(s => s)))`, "abc"},
		{"OrderByDescending", `@(string.Join("", new[] {3, 1, 2}.OrderByDescending(x => x)))`, "321"},
		{"Single", `@(new[] {5}.Single())`, "5"},
		{"SingleOrDefault", `@(new int[0].SingleOrDefault())`, "<null>"},
		{"ToList", `@(new[] {1}.ToList().Count)`, "1"},
		{"Array.Exists", `@(Array.Exists(new[] {"a", "b"}, s => s == "b"))`, "True"},
		{"header split any", `@(context.Request.Headers.GetValueOrDefault("Authorization", "").Split(' ').Any(p => p == "Bearer"))`, "True"},
		{"list add", `@{ var l = new List<string>(); l.Add("x"); l.Add("y"); return l.Count; }`, "2"},
		{"dictionary", `@{ var d = new Dictionary<string, string> { { "a", "1" }, ["b"] = "2" }; d["c"] = "3"; return d["a"] + d["b"] + d["c"] + d.ContainsKey("c"); }`, "123True"},
		{"TryGetValue", `@{ var d = new Dictionary<string, int>(); d.Add("k", 7); int v; return d.TryGetValue("k", out v) ? v : 0; }`, "7"},
		{"array new size", `@(new string[3].Length)`, "3"},
		{"lambda captures local", `@{ var min = 2; return new[] {1, 2, 3}.Count(x => x >= min); }`, "2"},
		{"nested lambda", `@(new[] {"ab", "cd"}.Any(s => new[] {'d'}.Any(c => s.Contains(c))))`, "True"},
	})
}

func TestStatements(t *testing.T) {
	checkCases(t, []evalCase{
		{"block return", `@{ return "x"; }`, "x"},
		{"typed locals", `@{ string a = "x"; int n = 2; bool f = true; return a + n + f; }`, "x2True"},
		{"compound assign", `@{ var n = 1; n += 4; n -= 2; n *= 3; return n; }`, "9"},
		{"string +=", `@{ var s = "a"; s += "b"; return s; }`, "ab"},
		{"increment", `@{ var i = 0; i++; ++i; i--; return i; }`, "1"},
		{"if else chain", `@{ var c = context.Response.StatusCode; if (c == 200) { return "ok"; } else if (c == 404) { return "nf"; } else { return "other"; } }`, "nf"},
		{"foreach", `@{ var t = 0; foreach (var x in new[] {1, 2, 3}) { t += x; } return t; }`, "6"},
		{"for break continue", `@{ var t = 0; for (int i = 0; i < 10; i++) { if (i == 5) break; if (i % 2 == 0) continue; t += i; } return t; }`, "4"},
		{"while", `@{ var i = 0; while (i < 3) { i++; } return i; }`, "3"},
		{"try catch", `@{ try { return JObject.Parse("bad").ToString(); } catch (Exception ex) { return "caught:" + (ex.Message.Length > 0); } }`, "caught:True"},
		{"try catch all", `@{ var r = "a"; try { var x = int.Parse("z"); } catch { r = "b"; } return r; }`, "b"},
		{"switch", `@{ switch (context.Request.Method) { case "GET": return 1; case "POST": return 2; default: return 3; } }`, "2"},
		{"using", `@{ using (var sb = new StringBuilder()) { sb.Append("x"); } return "ok"; }`, "ok"},
		{"comments", "@{\n // leading comment\n var x = 1; /* block */\n return x;\n}", "1"},
		{"ternary in block", `@{ var h = context.Request.Headers.GetValueOrDefault("X-None"); return h != null ? h : "dflt"; }`, "dflt"},
		{"jwt", `@{ var jwt = context.Request.Headers.GetValueOrDefault("Authorization").AsJwt(); return jwt.Subject + "|" + jwt.Issuer + "|" + string.Join(",", jwt.Audiences) + "|" + jwt.Claims.GetValueOrDefault("roles", "") + "|" + jwt.ExpirationTime.Value.ToString("yyyy"); }`, "user1|https://issuer|api1,api2|admin,reader|2024"},
		{"TryParseJwt", `@{ Jwt jwt; return "garbage".TryParseJwt(out jwt) ? "yes" : "no"; }`, "no"},
		{"jwt cast", `@{ context.Variables["t"] = context.Request.Headers["Authorization"][0].AsJwt(); var j = (Jwt)context.Variables["t"]; return j.Claims["sub"][0]; }`, "user1"},
		{"AsBasic", `@("Basic dXNlcjpwdw==".AsBasic().UserId + "/" + "Basic dXNlcjpwdw==".AsBasic().Password)`, "user/pw"},
		{"anon object", `@{ var o = new { name = "n", count = 2 }; return JsonConvert.SerializeObject(o); }`, `{"name":"n","count":2}`},
		{"throw caught", `@{ try { throw new Exception("x1"); } catch (Exception e) { return e.Message; } }`, "x1"},
		{"do while", `@{ var i = 0; do { i++; } while (i < 0); return i; }`, "1"},
		{"is pattern var", `@{ object o = context.Variables["x"]; if (o is string s) { return s.Length; } return 0; }`, "5"},
	})
}
