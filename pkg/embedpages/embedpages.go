// Package embedpages gives the kernel back the pages of a file embedded in the binary once the
// process is done with it.
//
// go:embed data lies in the executable's read-only mapping. Reading an embedded file maps its
// pages into the process, and they stay there, counted in its RSS and PSS, until memory
// pressure makes the kernel reclaim them. ketch reads two large ones once, on a node's first
// start: the runtime bundle's archive (unpacked to disk) and the addon image's layer (imported
// into containerd), 30 MB together, which an idle node otherwise carries for its whole life
// (docs/benchmarks.md#lean). The pages are clean copies of the executable file: a later read
// faults them back in, unchanged, so releasing them never changes what the program sees.
package embedpages

import (
	"bufio"
	"embed"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// Release tells the kernel that this process no longer needs the pages holding the embedded
// file name of fsys (madvise MADV_DONTNEED), and returns how many bytes that covered: the
// file's whole pages, not the partial pages at its ends, which it shares with other data. It
// only ever releases pages of a read-only mapping of a file; anything else is an error and
// nothing is released.
func Release(fsys embed.FS, name string) (int, error) {
	data, err := fileData(fsys, name)
	if err != nil {
		return 0, err
	}
	if len(data) == 0 {
		return 0, nil
	}
	page := uintptr(os.Getpagesize())
	first := uintptr(unsafe.Pointer(unsafe.StringData(data)))
	start := (first + page - 1) &^ (page - 1)
	end := (first + uintptr(len(data))) &^ (page - 1)
	if end <= start {
		return 0, nil
	}
	// MADV_DONTNEED on private memory that was ever written (anonymous memory, or a copy on
	// write) would lose its contents. The compiler places embedded data in the executable's
	// read-only data; check that this is so here, whatever the build mode, before releasing.
	if err := checkReadOnlyFileMapping(start, end); err != nil {
		return 0, fmt.Errorf("not releasing the pages of embedded %s: %w", name, err)
	}
	pages := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(data)), start-first)), end-start)
	if err := unix.Madvise(pages, unix.MADV_DONTNEED); err != nil {
		return 0, fmt.Errorf("releasing the pages of embedded %s: %w", name, err)
	}
	return int(end - start), nil
}

// Done releases the pages of the embedded file name of fsys once this process is done with it.
// Releasing only saves memory, so a file that cannot be released is logged (V(2)), not an
// error: what stops it (another Go release's embed.FS, an unusual mapping) is worth knowing
// when debugging, never worth failing a start.
func Done(fsys embed.FS, name string) {
	if n, err := Release(fsys, name); err != nil {
		klog.V(2).InfoS("Keeping the pages of an embedded file", "file", name, "err", err)
	} else {
		klog.V(4).InfoS("Released the pages of an embedded file", "file", name, "bytes", n)
	}
}

// errLayout is returned when embed.FS is not laid out as this package knows it.
var errLayout = errors.New("embed.FS's layout is not the one package embedpages knows (a new Go release?): update fileData")

// fileData is the embedded file's data, without a copy (embed.FS.ReadFile copies). embed.FS has
// no API for it; its layout is fixed by the compiler (cmd/compile's staticdata.WriteEmbed
// writes it): one field, files *[]file, each file a name, its data, and a hash. TestRelease
// fails if a Go release changes that.
func fileData(fsys embed.FS, name string) (string, error) {
	v := reflect.ValueOf(fsys)
	if v.NumField() != 1 {
		return "", errLayout
	}
	files := v.Field(0)
	if files.Kind() != reflect.Pointer || files.Type().Elem().Kind() != reflect.Slice {
		return "", errLayout
	}
	notFound := fmt.Errorf("embedded file %s: %w", name, os.ErrNotExist)
	if files.IsNil() {
		return "", notFound
	}
	list := files.Elem()
	f := list.Type().Elem()
	if f.Kind() != reflect.Struct || f.NumField() < 2 ||
		f.Field(0).Name != "name" || f.Field(0).Type.Kind() != reflect.String ||
		f.Field(1).Name != "data" || f.Field(1).Type.Kind() != reflect.String {
		return "", errLayout
	}
	for i := range list.Len() {
		// Value.String reads an unexported field's value; only Interface would refuse.
		if list.Index(i).Field(0).String() == name {
			return list.Index(i).Field(1).String(), nil
		}
	}
	return "", notFound
}

// checkReadOnlyFileMapping returns an error unless [start, end) lies in one mapping of this
// process that is a private, not writable mapping of a file (/proc/self/maps).
func checkReadOnlyFileMapping(start, end uintptr) error {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// address perms offset dev inode pathname
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		from, err1 := strconv.ParseUint(lo, 16, 64)
		to, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || uint64(start) < from || uint64(start) >= to {
			continue
		}
		switch {
		case uint64(end) > to:
			return fmt.Errorf("it spans more than the mapping %s", fields[0])
		case fields[1][1] != '-' || fields[1][3] != 'p':
			return fmt.Errorf("its mapping %s is %s, not read-only and private", fields[0], fields[1])
		case len(fields) < 6 || fields[4] == "0":
			return fmt.Errorf("its mapping %s is not of a file", fields[0])
		}
		return nil
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("reading /proc/self/maps: %w", err)
	}
	return fmt.Errorf("no mapping holds address %#x", start)
}
