package challenge

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html/template"
	"strings"
)

// The challenge page. One template, executed once when a Challenger is made:
// everything that is the same for every visitor (text, style, script,
// contact) is rendered then, and what differs per request (the challenge,
// its difficulty, the interrupted method and URL, a POSTed form's fields) is
// spliced into the bytes at marked slots. Serving the page is therefore a few
// copies into a pooled buffer, about what serving a static file costs.
//
// Nothing is loaded from elsewhere: the style and the script are inline, and
// the proof-of-work runs in Web Workers made from a Blob of a function in the
// same script. The Content-Security-Policy allows exactly these two inline
// blocks (by hash), blob: workers, and fetches to this origin.

// Slots, in the template text (which html/template leaves alone: template
// text is trusted, only actions are escaped).
const (
	slotChallenge  = "\x01challenge\x01"
	slotDifficulty = "\x01difficulty\x01"
	slotMethod     = "\x01method\x01"
	slotURL        = "\x01url\x01"
	slotFields     = "\x01fields\x01"
	slotExpected   = "\x01expected\x01"
	slotCarried    = "\x01carried\x01"
)

var slotNames = []string{slotChallenge, slotDifficulty, slotMethod, slotURL, slotFields, slotExpected, slotCarried}

const (
	idxChallenge = iota
	idxDifficulty
	idxMethod
	idxURL
	idxFields
	idxExpected
	idxCarried
)

const pageStyle = `
:root{color-scheme:light dark;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.5}
body{margin:0;padding:2rem 1rem;display:flex;justify-content:center}
main{max-width:36rem;width:100%}
h1{font-size:1.5rem;margin:0 0 1rem}
progress{width:100%;height:1.25rem}
.small{font-size:.9rem;opacity:.85}
.error{color:#b00020;font-weight:600}
@media (prefers-color-scheme:dark){.error{color:#ff6b81}}
button{font:inherit;padding:.4rem 1rem}
`

// pageScript runs on the page. The worker is the function workerMain, sent
// to a Blob by its source text, so the page stays one file with no other URL
// to fetch (and no CDN to trust). The worker hashes in plain JavaScript:
// crypto.subtle exists only in secure contexts (not on plain-HTTP sites) and
// its per-call promise costs more than a small synchronous SHA-256.
const pageScript = `
(function () {
  "use strict";
  var root = document.getElementById("warden-challenge");
  var statusEl = document.getElementById("warden-status");
  var bar = document.getElementById("warden-progress");
  var retry = document.getElementById("warden-retry");
  var d = root.dataset;
  var difficulty = +d.difficulty, expected = +d.expected;

  function workerMain() {
    var K = new Int32Array(64), H0 = new Int32Array(8);
    (function () {
      var n = 0, c = 2;
      while (n < 64) {
        var prime = true;
        for (var f = 2; f * f <= c; f++) if (c % f === 0) { prime = false; break; }
        if (prime) {
          if (n < 8) H0[n] = (Math.pow(c, 1 / 2) * 4294967296) | 0;
          K[n] = (Math.pow(c, 1 / 3) * 4294967296) | 0;
          n++;
        }
        c++;
      }
    })();
    var W = new Int32Array(64);
    function compress(st, b, off) {
      var i;
      for (i = 0; i < 16; i++) {
        var j = off + 4 * i;
        W[i] = (b[j] << 24) | (b[j + 1] << 16) | (b[j + 2] << 8) | b[j + 3];
      }
      for (i = 16; i < 64; i++) {
        var x = W[i - 15], y = W[i - 2];
        var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
      }
      var a = st[0], bb = st[1], c = st[2], dd = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
      for (i = 0; i < 64; i++) {
        var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        var t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        var t2 = (S0 + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
        h = g; g = f; f = e; e = (dd + t1) | 0; dd = c; c = bb; bb = a; a = (t1 + t2) | 0;
      }
      st[0] = (st[0] + a) | 0; st[1] = (st[1] + bb) | 0; st[2] = (st[2] + c) | 0; st[3] = (st[3] + dd) | 0;
      st[4] = (st[4] + e) | 0; st[5] = (st[5] + f) | 0; st[6] = (st[6] + g) | 0; st[7] = (st[7] + h) | 0;
    }
    onmessage = function (ev) {
      var ch = ev.data.challenge, diff = ev.data.difficulty, ctr = ev.data.start, step = ev.data.step;
      var pre = new Uint8Array(ch.length);
      for (var i = 0; i < ch.length; i++) pre[i] = ch.charCodeAt(i);
      // The challenge's whole 64-byte blocks are hashed once; each try
      // hashes only the tail, the counter and the padding.
      var full = pre.length - (pre.length % 64);
      var mid = new Int32Array(H0);
      for (var off = 0; off < full; off += 64) compress(mid, pre, off);
      var tail = pre.subarray(full);
      var buf = new Uint8Array(128), st = new Int32Array(8), count = 0, last = Date.now();
      for (;;) {
        var s = String(ctr), n = tail.length;
        buf.fill(0);
        buf.set(tail, 0);
        for (var k = 0; k < s.length; k++) buf[n++] = s.charCodeAt(k);
        buf[n] = 0x80;
        var end = n + 9 <= 64 ? 64 : 128;
        var bitLen = (pre.length + s.length) * 8;
        buf[end - 4] = bitLen >>> 24; buf[end - 3] = (bitLen >>> 16) & 255;
        buf[end - 2] = (bitLen >>> 8) & 255; buf[end - 1] = bitLen & 255;
        st.set(mid);
        compress(st, buf, 0);
        if (end === 128) compress(st, buf, 64);
        if (diff === 0 || (st[0] >>> (32 - diff)) === 0) { postMessage({ counter: s, tries: count + 1 }); return; }
        ctr += step;
        // Report about five times a second, not per batch: a page that
        // repaints hundreds of times a second slows the visitor's machine.
        if (++count % 4096 === 0 && Date.now() - last >= 200) { last = Date.now(); postMessage({ progress: count }); }
      }
    };
  }

  function say(text, isError) {
    statusEl.textContent = text;
    statusEl.className = isError ? "error" : "";
  }
  function fail(text) {
    say(text, true);
    retry.hidden = false;
  }
  retry.addEventListener("click", function () { location.reload(); });

  // A browser that drops the clearance cookie (cookies blocked, or a
  // Secure cookie on plain HTTP) would be challenged again after every
  // solution, for ever. Three challenges within a minute in this tab stop
  // the loop and say why.
  try {
    var seen = JSON.parse(sessionStorage.getItem("warden-challenges") || "[]");
    var t = Date.now();
    seen = seen.filter(function (x) { return t - x < 60000; });
    seen.push(t);
    sessionStorage.setItem("warden-challenges", JSON.stringify(seen));
    if (seen.length > 3) {
      fail("Your browser passed the check but did not keep its cookie, so the site keeps asking. Allow cookies for this site and try again.");
      return;
    }
  } catch (e) { /* no sessionStorage: no loop guard */ }

  if (typeof Worker === "undefined" || typeof Blob === "undefined") {
    fail("This browser cannot run the check (no Web Workers). " + document.getElementById("warden-alt").textContent);
    return;
  }
  var src = "(" + workerMain.toString() + ")()";
  var url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
  var n = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
  var workers = [], counts = [], finished = false;
  function stop() { for (var i = 0; i < workers.length; i++) workers[i].terminate(); URL.revokeObjectURL(url); }
  function progress() {
    var total = 0;
    for (var i = 0; i < counts.length; i++) total += counts[i];
    var p = Math.min(0.99, 1 - Math.exp(-total / expected));
    bar.value = p;
    say("Checking your browser\u2026 " + Math.round(p * 100) + "%");
  }
  for (var i = 0; i < n; i++) {
    counts.push(0);
    var w = new Worker(url);
    w.onmessage = (function (i) {
      return function (ev) {
        if (finished) return;
        if (ev.data.counter !== undefined) { finished = true; stop(); submit(ev.data.counter); return; }
        counts[i] = ev.data.progress;
        progress();
      };
    })(i);
    w.onerror = function () { if (!finished) { finished = true; stop(); fail("The check could not run in this browser."); } };
    w.postMessage({ challenge: d.challenge, difficulty: difficulty, start: i, step: n });
    workers.push(w);
  }

  function submit(counter) {
    say("Verifying\u2026");
    var body = new URLSearchParams();
    body.set("challenge", d.challenge);
    body.set("counter", counter);
    body.set("method", d.method);
    body.set("url", d.url);
    fetch(d.verify, { method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.ok) { resume(); return; }
        return r.json().then(function (p) { fail("The check failed: " + (p.detail || r.status) + "."); },
                             function () { fail("The check failed (" + r.status + ")."); });
      }, function () { fail("The check could not reach the server. Check your connection and try again."); });
  }

  function resume() {
    bar.value = 1;
    say("Done. Taking you on\u2026");
    if (d.method === "POST") {
      var form = document.getElementById("warden-resume");
      if (d.carried === "1") {
        // The prototype's submit, as a carried field named "submit" would
        // shadow form.submit.
        HTMLFormElement.prototype.submit.call(form);
        return;
      }
    }
    if (d.method === "GET" || d.method === "HEAD") { location.replace(d.url); return; }
    say("Checked. Your browser may now repeat what it was doing; the form could not be carried over, so please send it again.");
  }
})();
`

const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>Checking your browser</title>
<style>{{.Style}}</style>
</head>
<body>
<main id="warden-challenge" data-challenge="` + slotChallenge + `" data-difficulty="` + slotDifficulty + `" data-expected="` + slotExpected + `" data-method="` + slotMethod + `" data-url="` + slotURL + `" data-carried="` + slotCarried + `" data-verify="{{.VerifyPath}}">
<h1>Checking your browser</h1>
<p>This site asks your browser to do a moment of work before it lets you in. It keeps automated
scrapers away, which cannot afford the work for millions of pages. You will be taken to the page
by itself in a few seconds; nothing is needed from you.</p>
<progress id="warden-progress" max="1" value="0" aria-label="Progress of the check"></progress>
<p id="warden-status" role="status" aria-live="polite">Checking your browser&hellip;</p>
<button id="warden-retry" type="button" hidden>Try again</button>
<noscript>
<p class="error">This check needs JavaScript, which is turned off or not available in your browser.</p>
<p>The page you asked for is protected against automated scraping: a browser proves it is one by
running a short computation in JavaScript. Turn JavaScript on for this site and reload the page.</p>
</noscript>
<p class="small" id="warden-alt">Cannot run JavaScript, or visiting from a program? {{.Alternative}}{{if .Contact}} Contact: {{.Contact}}.{{end}}</p>
<form id="warden-resume" method="post" action="` + slotURL + `" hidden>` + slotFields + `</form>
</main>
<script>{{.Script}}</script>
</body>
</html>
`

// page is the rendered page split at its slots.
type page struct {
	pieces [][]byte // static text; pieces[i] comes before slots[i]
	slots  []int    // which dynamic value goes after pieces[i]
	size   int      // total static bytes
	csp    []string // the Content-Security-Policy header value
}

type pageData struct {
	Style       template.CSS
	Script      template.JS
	VerifyPath  string
	Alternative string
	Contact     string
}

var pageTmpl = template.Must(template.New("challenge").Parse(pageTemplate))

func buildPage(verifyPath, contact string) (*page, error) {
	var out bytes.Buffer
	err := pageTmpl.Execute(&out, pageData{
		Style:       template.CSS(pageStyle),
		Script:      template.JS(pageScript),
		VerifyPath:  verifyPath,
		Alternative: Hint(),
		Contact:     contact,
	})
	if err != nil {
		return nil, fmt.Errorf("challenge page: %v", err)
	}
	text := out.Bytes()
	// The template must carry the style and script verbatim, or the hashes
	// in the Content-Security-Policy would not allow them.
	if !bytes.Contains(text, []byte("<script>"+pageScript+"</script>")) || !bytes.Contains(text, []byte("<style>"+pageStyle+"</style>")) {
		return nil, fmt.Errorf("challenge page: inline script or style was altered by the template")
	}
	p := &page{}
	for len(text) > 0 {
		at, which := -1, -1
		for i, s := range slotNames {
			if j := bytes.Index(text, []byte(s)); j >= 0 && (at < 0 || j < at) {
				at, which = j, i
			}
		}
		if at < 0 {
			p.pieces = append(p.pieces, text)
			p.size += len(text)
			break
		}
		p.pieces = append(p.pieces, text[:at])
		p.slots = append(p.slots, which)
		p.size += at
		text = text[at+len(slotNames[which]):]
	}
	scriptHash := sha256.Sum256([]byte(pageScript))
	styleHash := sha256.Sum256([]byte(pageStyle))
	p.csp = []string{"default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(scriptHash[:]) +
		"'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(styleHash[:]) +
		"'; worker-src blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"}
	return p, nil
}

// appendHTMLEscaped appends s escaped for an HTML attribute value or text.
func appendHTMLEscaped(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case 0:
			esc = "\uFFFD"
		default:
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		last = i + 1
	}
	return append(dst, s[last:]...)
}

// Hint tells an automated client what would let it in without a challenge.
// The lead's refusal renderer shows it with challenge_required.
func Hint() string {
	return "Send an API key with your requests, or, for a crawler or agent, identify as a verified bot: " +
		"crawl from addresses whose reverse DNS names your published domain, or sign requests with Web Bot Auth (HTTP Message Signatures)."
}

// safeTarget returns url if it is a path on this origin ("/..."), and "/"
// otherwise, so that the page and the verify endpoint can never be made to
// send a visitor elsewhere ("//evil.example", "https://evil.example",
// "/\evil.example" which browsers read as "//").
func safeTarget(url string) string {
	if !strings.HasPrefix(url, "/") || strings.HasPrefix(url, "//") || strings.HasPrefix(url, "/\\") {
		return "/"
	}
	for i := 0; i < len(url); i++ {
		if url[i] < 0x20 || url[i] == 0x7f {
			return "/"
		}
	}
	return url
}
