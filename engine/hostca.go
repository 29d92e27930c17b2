package engine

import (
	"fmt"
	"os"
	"path/filepath"
)

// DefaultHostCABundle is Debian's and Ubuntu's system bundle.
const DefaultHostCABundle = "/etc/ssl/certs/ca-certificates.crt"

// hostCAFolder returns the folder holding only the host CA bundle and its Java
// trust store (made on first use, so the bundle is read and converted once per
// run), or "" without TrustHostCA.
func (b *BuildKit) hostCAFolder() (string, error) {
	if b.caBundle == "" {
		return "", nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.caDir != "" {
		return b.caDir, nil
	}
	dt, err := os.ReadFile(b.caBundle)
	if err != nil {
		return "", fmt.Errorf("trust_host_ca: %w", err)
	}
	store, _, err := javaTrustStore(b.caBundle, dt)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "layerpack-host-ca-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	for name, content := range map[string][]byte{hostCAFile: dt, hostCAStoreFile: store} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	b.caDir = dir
	return dir, nil
}
