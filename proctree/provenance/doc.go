// Package provenance simplifies a process provenance tree around one alert
// (seed 002): it keeps the alert's ancestors and descendants, drops
// processes of no interest by rules, splits command lines and events into
// resources (files, URLs, domains, addresses) and merges equal resources
// into one graph whose edges say what happened.
package provenance
