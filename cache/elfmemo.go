package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/layerpack/layerpack/elfinfo"
)

// ELFMemo is verify's memo of ELF inspections (verify.ELFMemo), kept in the entry
// store beside the compressed entries: small JSON blobs under a key made of the
// content's SHA-256 and elfinfo.Version, pruned with the rest.
type ELFMemo struct{ e *Entries }

// ELFMemo returns the memo of ELF inspections.
func (e *Entries) ELFMemo() ELFMemo { return ELFMemo{e} }

func elfKey(sum []byte) string {
	h := sha256.New()
	h.Write([]byte("layerpack " + elfinfo.Version + "\x00"))
	h.Write(sum)
	return hex.EncodeToString(h.Sum(nil))
}

// Get returns what was found in the content with this SHA-256.
func (m ELFMemo) Get(sum []byte) (*elfinfo.Info, bool) {
	b, ok := m.e.Get(elfKey(sum))
	if !ok {
		return nil, false
	}
	var rec struct {
		Version string
		Info    *elfinfo.Info
	}
	if json.Unmarshal(b, &rec) != nil || rec.Version != elfinfo.Version || rec.Info == nil {
		return nil, false
	}
	return rec.Info, true
}

// Put remembers info for the content with this SHA-256.
func (m ELFMemo) Put(sum []byte, info *elfinfo.Info) {
	b, err := json.Marshal(struct {
		Version string
		Info    *elfinfo.Info
	}{elfinfo.Version, info})
	if err == nil {
		m.e.Put(elfKey(sum), b)
	}
}
