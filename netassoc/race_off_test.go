//go:build !race

package netassoc

const raceEnabled = false
