// Package pipeline runs a plan. Each item (one layer, one architecture) goes through
// these stages, in order; each is a small function with a one-line contract in
// stages.go:
//
//	key     hash everything that can change the zip's bytes
//	lock    one builder of a key at a time, across processes
//	cached  a cache hit places the cached zip and ends the item
//	stage   the builders fill a private staged tree (what lands in /opt)
//	filter  VCS folders out, include/exclude, credentials refused
//	zip     the deterministic zip, to a temp file beside the output
//	verify  Lambda's rules on the written zip (layout, limits, modes, links, ELF)
//	place   atomic rename into the output folder
//	store   keep the zip in the cache for next time
//
// Around the items, Run sweeps temp files that killed runs left behind, and at the
// end records the manifest: entries of zips that were (re)built replace their old
// ones, entries of items that failed keep describing the untouched zips beside them,
// so the manifest never disagrees with the folder. Outputs that hang off a built
// zip (publishing, images, SBOMs) run after the manifest as further steps.
// Nothing half-written ever has a final name.
package pipeline
