//go:build race

package netassoc

// raceEnabled: the race detector slows each Record ~10x; bounds tests
// record fewer associations.
const raceEnabled = true
