package builders

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Merge moves the content of src into the staged tree dst. A file that already exists
// in dst is an error naming it: two builders writing the same path is a config
// mistake, not something to resolve silently.
func Merge(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if st, err := os.Lstat(target); err == nil {
				if !st.IsDir() {
					return fmt.Errorf("%s is a folder in one builder's output and a file in another's", filepath.ToSlash(rel))
				}
				return nil // merge into it
			}
			// Move the whole folder at once when dst has nothing there.
			if err := os.Rename(p, target); err != nil {
				return err
			}
			return filepath.SkipDir
		}
		if _, err := os.Lstat(target); err == nil {
			return fmt.Errorf("%s is written by two builders", filepath.ToSlash(rel))
		}
		return os.Rename(p, target)
	})
}
