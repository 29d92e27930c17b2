// Package bytesize prints byte counts the one way layerpack shows them: decimal
// units (kB, MB, GB, as Lambda's limits are stated), one decimal.
package bytesize

import "fmt"

// Format is n as "412.3 kB", "36.6 MB" or "512 B".
func Format(n int64) string {
	const unit = 1000
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit || m <= -unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
