package interop

import "testing"

func testTSSDK(t *testing.T, srv *server) { t.Skip("not yet") }
