// Command plainmcp is the baseline of the load benchmark (bench/loadbench):
// an mcp-go server without authentication that offers the same "echo" tool
// as a freshly generated project, with the same mcp-go version (this
// module's go.mod, which the benchmark checks against the generated
// go.mod), the same server options and the same http.Server settings where
// they are comparable. It logs nothing per request and has no metrics: it is
// what a generated server is compared with.
//
//	go run ./bench/plainmcp -addr 127.0.0.1:8081
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// echoArgs are the arguments of the echo tool, as in a generated project.
type echoArgs struct {
	Text string `json:"text" jsonschema:"The text to echo back"`
}

func echoTool() server.ServerTool {
	return server.ServerTool{
		Tool: mcp.NewTool("echo",
			mcp.WithDescription("Echoes the given text back. (A placeholder: say here what echo does and when to use it.)"),
			mcp.WithInputSchema[echoArgs](),
			mcp.WithReadOnlyHintAnnotation(true),
			mcp.WithDestructiveHintAnnotation(false),
			mcp.WithOpenWorldHintAnnotation(false),
		),
		Handler: mcp.NewTypedToolHandler(func(ctx context.Context, req mcp.CallToolRequest, args echoArgs) (*mcp.CallToolResult, error) {
			if args.Text == "" {
				return mcp.NewToolResultError("text must not be empty"), nil
			}
			return mcp.NewToolResultText(args.Text), nil
		}),
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen `address`")
	flag.Parse()

	s := server.NewMCPServer("plainmcp", "0.1.0",
		server.WithInstructions("the load benchmark's baseline"),
		server.WithToolCapabilities(false),
		server.WithRecovery(),
	)
	s.AddTools(echoTool())
	mcpHandler := server.NewStreamableHTTPServer(s, server.WithSessionIdleTTL(30*time.Minute))
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcpHandler)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	fmt.Fprintf(os.Stderr, "plainmcp: serving http://%s/mcp\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
