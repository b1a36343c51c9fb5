// Command slow-origin is an origin that takes its time, for bench/ttfb.sh:
//
//	/download  20 KiB of application/octet-stream with a Content-Length,
//	           1 KiB every 200 ms
//	/page      an HTML page: 10 KB of head at once, the rest (with the
//	           elements bench/ttfb.sh's rules rewrite) 1.5 s later, chunked
//	/huge      an HTML page of -huge bytes (1 GiB), chunked, as fast as it
//	           goes, with those elements in its last kilobytes
//
// It listens on loopback only.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"strings"
	"time"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:3000", "loopback address to listen on")
	pause := flag.Duration("pause", 1500*time.Millisecond, "how long /page waits after its head")
	huge := flag.Int64("huge", 1<<30, "the size of /huge")
	flag.Parse()
	if !strings.HasPrefix(*addr, "127.") && !strings.HasPrefix(*addr, "localhost:") {
		log.Fatalf("slow-origin listens on loopback only, not %s", *addr)
	}
	head := "<!DOCTYPE html>\n<html><head><title>A slow page</title>\n<style>\n" +
		strings.Repeat(".card{margin:0 auto;padding:1rem;border:1px solid #ddd}\n", 175) +
		"</style></head>\n<body>\n<header><nav><a href=/>Home</a></nav></header>\n"
	late := "<main><p class=\"greeting\">Welcome!</p><div class=\"cta\"><a href=\"/shop\">Shop</a></div>\n" +
		strings.Repeat("<p>More of the page, sent after the pause.</p>\n", 200) + "</main></body></html>\n"
	mux := http.NewServeMux()
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(20*1024))
		block := []byte(strings.Repeat("x", 1023) + "\n")
		for i := range 20 {
			if i > 0 {
				time.Sleep(200 * time.Millisecond)
			}
			if _, err := w.Write(block); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(head))
		w.(http.Flusher).Flush()
		time.Sleep(*pause)
		w.Write([]byte(late))
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		filler := []byte(strings.Repeat("<p>Filler paragraph of a very long page.</p>\n", 1400)) // ~63 KB
		left := *huge - int64(len(head)) - int64(len(late))
		if _, err := w.Write([]byte(head)); err != nil {
			return
		}
		for ; left >= int64(len(filler)); left -= int64(len(filler)) {
			if _, err := w.Write(filler); err != nil {
				return
			}
		}
		w.Write([]byte(strings.Repeat(" ", int(max(left, 0))))) // whole paragraphs, then spaces
		w.Write([]byte(late))
	})
	log.Fatal(http.ListenAndServe(*addr, mux))
}
