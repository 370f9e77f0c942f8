package clickhouse

import (
	"testing"
	"time"
)

func TestInsertDecisions(t *testing.T) {
	c, opts := testClient(t, true, nil)
	ctx := ctxTimeout(t, 30*time.Second)
	now := time.Now().UTC().Truncate(time.Second)
	rows := []Decision{
		{Time: now, DecisionID: "dec_1", SubjectKind: "caller", Subject: "+15550100001", Action: "release", By: "ana", Reason: "customer called", Source: "api"},
		{Time: now, DecisionID: "dec_2", SubjectKind: "caller", Subject: "+15550100001", Action: "approve", RequestID: "msg_9", By: "bo", Reason: "ok", Source: "cli"},
	}
	if err := c.InsertDecisions(ctx, rows); err != nil {
		t.Fatal(err)
	}
	_, got := queryStrings(t, adminConn(t, opts.Database),
		"SELECT decision_id, action, request_id, by, source FROM decisions ORDER BY decision_id")
	if want := "  dec_1 | release |  | ana | api\n  dec_2 | approve | msg_9 | bo | cli\n"; tableText(got) != want {
		t.Errorf("decisions:\n%s\nwant\n%s", tableText(got), want)
	}
}
