package clickhouse

import "github.com/ClickHouse/clickhouse-go/v2/lib/driver"

// Conn is the client's connection pool, for the read queries of other
// packages (the console). It is safe for concurrent use; Close the Client,
// not the Conn.
func (c *Client) Conn() driver.Conn { return c.conn }
