package clickhouse

import (
	"testing"
	"time"
)

func TestInsertHookDeliveries(t *testing.T) {
	c, opts := testClient(t, true, nil)
	ctx := ctxTimeout(t, 30*time.Second)
	now := time.Now().UTC().Truncate(time.Second)
	rows := []HookDelivery{
		{Time: now, RequestID: "msg_1", AlertID: "a1", Endpoint: "sps", Action: "suspend", SubjectKind: "caller", Subject: "+15550100001",
			Rule: "r", Attempt: 1, StatusCode: 503, LatencyMS: 12.5, Error: "HTTP 503", Outcome: "retry", Mode: "enforce", NextAttempt: now.Add(5 * time.Second), Body: "{}"},
		{Time: now, RequestID: "msg_2", AlertID: "a2", Endpoint: "trial", Action: "suspend", SubjectKind: "caller", Subject: "+15550100002",
			Rule: "r", Outcome: "shadow", Mode: "shadow", Body: "{}"},
	}
	if err := c.InsertHookDeliveries(ctx, rows); err != nil {
		t.Fatal(err)
	}
	_, got := queryStrings(t, adminConn(t, opts.Database),
		"SELECT request_id, endpoint, toString(attempt), toString(status_code), outcome, mode FROM hook_deliveries ORDER BY request_id")
	if want := "  msg_1 | sps | 1 | 503 | retry | enforce\n  msg_2 | trial | 0 | 0 | shadow | shadow\n"; tableText(got) != want {
		t.Errorf("hook_deliveries:\n%s\nwant\n%s", tableText(got), want)
	}
}
