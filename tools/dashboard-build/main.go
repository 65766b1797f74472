// Command dashboard-build bundles the dashboard's front end (pkg/addons/dashboard/ui, whose npm
// packages `npm ci` put in its node_modules from the lockfile) into app.js and app.css in
// pkg/addons/dashboard/web, which the dashboard embeds. It is esbuild's Go library at the
// version go.mod pins, so the bundle needs no network and no Node.js beyond npm's install, and
// the same sources and lockfile give the same bytes. It fails on any error or warning, and when
// the gzipped assets exceed the budget.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// budget is the most the gzipped assets may weigh (issue: 1 MB).
const budget = 1000 * 1000

func main() {
	ui := flag.String("ui", "pkg/addons/dashboard/ui", "the front end's sources (src/main.js) and node_modules")
	out := flag.String("out", "pkg/addons/dashboard/web", "where app.js and app.css go, beside index.html")
	flag.Parse()
	if err := run(*ui, *out); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard-build:", err)
		os.Exit(1)
	}
}

func run(ui, out string) error {
	if _, err := os.Stat(filepath.Join(ui, "node_modules")); err != nil {
		return fmt.Errorf("no %s/node_modules: run npm ci there first (make dashboard-assets does)", ui)
	}
	res := api.Build(api.BuildOptions{
		EntryPoints:       []string{filepath.Join(ui, "src", "main.js")},
		Outfile:           filepath.Join(out, "app.js"),
		Bundle:            true,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Format:            api.FormatIIFE,
		Target:            api.ES2020,
		Platform:          api.PlatformBrowser,
		Charset:           api.CharsetUTF8,
		LegalComments:     api.LegalCommentsEndOfFile,
		Write:             false,
		LogLevel:          api.LogLevelSilent,
		AbsWorkingDir:     mustAbs("."),
	})
	if len(res.Errors) > 0 || len(res.Warnings) > 0 {
		var b strings.Builder
		for _, m := range append(res.Errors, res.Warnings...) {
			loc := ""
			if m.Location != nil {
				loc = fmt.Sprintf("%s:%d: ", m.Location.File, m.Location.Line)
			}
			fmt.Fprintf(&b, "\n  %s%s", loc, m.Text)
		}
		return fmt.Errorf("%d errors, %d warnings:%s", len(res.Errors), len(res.Warnings), b.String())
	}
	var total int
	for _, f := range res.OutputFiles {
		if err := os.WriteFile(f.Path, f.Contents, 0o644); err != nil {
			return err
		}
		n, err := gzipSize(f.Contents)
		if err != nil {
			return err
		}
		total += n
		fmt.Printf("%s: %d bytes, %d gzipped\n", filepath.Base(f.Path), len(f.Contents), n)
	}
	if total > budget {
		return fmt.Errorf("the assets are %d bytes gzipped, over the budget of %d", total, budget)
	}
	fmt.Printf("total: %d bytes gzipped (budget %d)\n", total, budget)
	return nil
}

func gzipSize(b []byte) (int, error) {
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return 0, err
	}
	if _, err := w.Write(b); err != nil {
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return buf.Len(), nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}
