// Command slowloris holds many connections to a loopback server, each
// trickling a request header a byte at a time and never finishing it, for
// bench/slowloris.sh. A connection the server cuts is opened again, so the
// number held stays at -conns for -duration. The connections come from
// -sources loopback addresses (127.0.0.2, 127.0.0.3, … from -first): on Linux all of
// 127.0.0.0/8 is loopback, so one machine is many clients.
//
// Every -report it prints one line: connections open, opened in all, cut by
// the server, dial errors. It stops by itself after -duration.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "the loopback server to hold")
	conns := flag.Int("conns", 20000, "connections to hold open")
	sources := flag.Int("sources", 20, "client addresses (127.0.0.<first> and on)")
	first := flag.Int("first", 2, "the last byte of the first client address")
	delay := flag.Duration("delay", 0, "wait this long before the first connection")
	gap := flag.Duration("gap", time.Second, "time between two bytes of a connection's header")
	rate := flag.Int("rate", 4000, "most new connections a second")
	duration := flag.Duration("duration", 60*time.Second, "how long to hold them")
	report := flag.Duration("report", 5*time.Second, "how often to print the counts")
	flag.Parse()
	if host, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("slowloris targets loopback addresses only, not %s", *addr)
	}
	if *sources < 1 || *first < 2 || *first+*sources > 255 {
		log.Fatal("-first and -sources must keep the addresses within 127.0.0.2 to 127.0.0.254")
	}
	time.Sleep(*delay)

	var open, opened, cut, dialErrs atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	go func() {
		t := time.NewTicker(*report)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fmt.Printf("open %d opened %d cut %d dial_errors %d\n", open.Load(), opened.Load(), cut.Load(), dialErrs.Load())
			}
		}
	}()

	// The header: a request line, then one endless header value.
	header := "GET / HTTP/1.1\r\nHost: victim\r\nX-Slow: " + strings.Repeat("a", 1<<16)
	hold := func(src net.IP) {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
		for ctx.Err() == nil {
			c, err := d.DialContext(ctx, "tcp", *addr)
			if err != nil {
				dialErrs.Add(1)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
				continue
			}
			opened.Add(1)
			open.Add(1)
			stop := context.AfterFunc(ctx, func() { c.Close() })
			for i := 0; ctx.Err() == nil; i = (i + 1) % len(header) {
				c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write([]byte{header[i]}); err != nil {
					if ctx.Err() == nil {
						cut.Add(1)
					}
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(*gap):
				}
			}
			stop()
			c.Close()
			open.Add(-1)
		}
	}
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	for i := 0; i < *conns && ctx.Err() == nil; i++ {
		<-tick.C
		go hold(net.IPv4(127, 0, 0, byte(*first+i%*sources)))
	}
	<-ctx.Done()
	time.Sleep(200 * time.Millisecond)
	fmt.Printf("done: open %d opened %d cut %d dial_errors %d\n", open.Load(), opened.Load(), cut.Load(), dialErrs.Load())
}
