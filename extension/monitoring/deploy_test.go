package monitoring

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// The Logs Ingestion API drops columns a data collection rule does not
// declare, silently. These tests keep deploy/log-analytics in step with
// the rows the pipeline sends.

type streamDecl struct {
	Columns []struct{ Name, Type string }
}

func loadDCR(t *testing.T) map[string]streamDecl {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "log-analytics", "azuredeploy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct {
		Resources []struct {
			Type       string
			Properties struct {
				StreamDeclarations map[string]streamDecl
			}
		}
	}
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	for _, r := range tpl.Resources {
		if r.Type == "Microsoft.Insights/dataCollectionRules" {
			return r.Properties.StreamDeclarations
		}
	}
	t.Fatal("no data collection rule in azuredeploy.json")
	return nil
}

// checkRow asserts every column of row is declared with a matching type.
func checkRow(t *testing.T, stream string, decl streamDecl, row []byte) {
	t.Helper()
	types := map[string]string{}
	for _, c := range decl.Columns {
		types[c.Name] = c.Type
	}
	var m map[string]any
	if err := json.Unmarshal(row, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		typ, ok := types[k]
		if !ok {
			t.Errorf("%s: column %s is sent but not declared (Log Analytics would drop it)", stream, k)
			continue
		}
		var good bool
		switch v := v.(type) {
		case string:
			if typ == "datetime" {
				_, err := time.Parse(time.RFC3339Nano, v)
				good = err == nil
			} else {
				good = typ == "string"
			}
		case float64:
			good = typ == "real" || ((typ == "int" || typ == "long") && v == float64(int64(v)))
		case bool:
			good = typ == "boolean"
		case map[string]any, []any:
			good = typ == "dynamic"
		}
		if !good {
			t.Errorf("%s: column %s declared %s, sent %T %v", stream, k, typ, v, v)
		}
	}
}

func TestStreamDeclarationsCoverRows(t *testing.T) {
	t.Parallel()
	dcr := loadDCR(t)
	logs, ok := dcr["Custom-APIMGatewayLogs"]
	if !ok {
		t.Fatal("Custom-APIMGatewayLogs not declared")
	}
	// Every column of the gateway's records (contract 1), with a value.
	full := map[string]any{
		"TimeGenerated": "2026-11-30T00:00:00.123Z", "CorrelationId": "c", "Method": "GET", "Url": "http://h/", "Hostname": "h",
		"ResponseCode": 200, "ResponseSize": 1, "RequestSize": 1, "BackendMethod": "GET", "BackendUrl": "http://b/",
		"BackendResponseCode": 200, "BackendTime": 1.5, "TotalTime": 2.5, "ClientTime": 0.5, "Cache": "miss", "ApiId": "a",
		"OperationId": "o", "ProductId": "p", "ApimSubscriptionId": "s", "ApiRevision": "1", "ClientProtocol": "HTTP/1.1",
		"ClientTlsVersion": "TLS 1.3", "CallerIpAddress": "10.0.0.1", "IsRequestSuccess": true, "LastErrorReason": "r",
		"LastErrorMessage": "m", "LastErrorSource": "s", "LastErrorSection": "backend", "LastErrorScope": "api",
		"Sequence": 7, "CustomMetrics": []any{map[string]any{"Namespace": "n", "Name": "x", "Value": 1, "Dimensions": map[string]string{"k": "v"}}},
	}
	raw, _ := json.Marshal(full)
	checkRow(t, "logs", logs, appendLogRow(nil, raw, "e", 7, "TimeGenerated"))
	checkRow(t, "logs", logs, appendLogRow(nil, genRecord(14, "e", time.Now()), "e", 14, "TimeGenerated"))

	metrics, ok := dcr[DefaultMetricsStream]
	if !ok {
		t.Fatalf("%s not declared", DefaultMetricsStream)
	}
	a := newAggregator(testResource, 10)
	var rec record
	if err := decodeRecord(raw, &rec); err != nil {
		t.Fatal(err)
	}
	a.add(&rec, time.Unix(0, 0))
	n := 0
	a.closeAll(func(rows []MetricRow) {
		for i := range rows {
			n++
			checkRow(t, "metrics", metrics, appendMetricRow(nil, &rows[i], "TimeGenerated"))
		}
	})
	if n != 5 { // Requests, Duration, BackendDuration, ClientDuration, x
		t.Fatalf("%d metric rows", n)
	}
}

func TestWorkbookTemplateMatchesDocs(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "workbook", "apim-gateway.workbook.json"))
	if err != nil {
		t.Fatal(err)
	}
	var wb any
	if err := json.Unmarshal(doc, &wb); err != nil {
		t.Fatal(err)
	}
	armb, err := os.ReadFile(filepath.Join("..", "..", "deploy", "log-analytics", "workbook.azuredeploy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var arm struct {
		Resources []struct {
			Properties struct{ SerializedData string }
		}
	}
	if err := json.Unmarshal(armb, &arm); err != nil || len(arm.Resources) != 1 {
		t.Fatalf("%v", err)
	}
	var fromARM any
	if err := json.Unmarshal([]byte(arm.Resources[0].Properties.SerializedData), &fromARM); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(wb, fromARM) {
		t.Fatal("deploy/log-analytics/workbook.azuredeploy.json differs from docs/workbook/apim-gateway.workbook.json")
	}
}
