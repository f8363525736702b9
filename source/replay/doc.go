// Package replay reads recorded event traces as a [source.Source], writes
// live events in the native trace format, and builds traces in Go code for
// unit tests.
//
// # Formats
//
// The formats are those of spec/events.md.
//
// Native ([FormatNative]) is JSON lines: one object per line with the
// fields ts (RFC 3339, fraction optional), type (fork, exec, exit, connect,
// send, accept, risk, assess, file, dns), pid (> 0) and the fields of its
// type: start; ppid (required for fork, optional for exec); exe, argv or
// cmdline (one string split like a POSIX shell splits a simple command:
// quotes and backslash escapes, no expansions), uid, cwd; code; proto, dst
// and src ("ip:port" or "[v6]:port"; for accept src is the local listener
// and dst the remote peer), bytes; level (low, medium, high, critical) and
// reason; safe (required for assess); path and op (create, write, delete);
// query and answers (IP addresses). Blank lines and lines whose first
// non-blank character is # are skipped. Unknown fields, and fields a type
// does not use, are ignored. Every event is checked with
// (*source.Event).Validate.
//
// Sysmon for Linux ([FormatSysmon]) is read from syslog lines that embed an
// XML <Event>…</Event> (the text before it is ignored), bare XML events
// (one per line, several concatenated on a line, or one spanning lines),
// and JSON objects whose members carry Sysmon field names in any letter
// case, flat or nested (seed 002's records: nodeid, processid,
// parentprocessid, commandline, parentcommandline, image, parentimage,
// utctime, eventnum). The event id comes from <EventID>, EventID or
// eventnum; the time from UtcTime (UTC; "2022-11-24 08:30:01.467" or RFC
// 3339), else the XML's TimeCreated. ProcessGuid (or nodeid) becomes
// Event.GUID and ParentProcessGuid Event.ParentGUID. The mapping:
//
//	 1 ProcessCreate    exec: Exe=Image, Argv=CommandLine split like a shell
//	                    (or at blanks if it does not split), Cwd=CurrentDirectory,
//	                    PPID=ParentProcessId, ParentGUID, ParentExe=ParentImage,
//	                    ParentArgv=ParentCommandLine, so the consumer can make an
//	                    implicit fork; User: a numeric user or "root" sets UID
//	 3 NetworkConnect   connect when Initiated is true or absent, else accept;
//	                    connect: Src=SourceIp:SourcePort, Dst=DestinationIp:Port;
//	                    accept (Sysmon names the remote initiator as the source):
//	                    Src (local listener)=DestinationIp:Port, Dst (peer)=SourceIp:Port
//	 5 ProcessTerminate exit
//	11 FileCreate       file, Op=create, Path=TargetFilename
//	23 FileDelete       file, Op=delete, Path=TargetFilename
//	22 DnsQuery         dns: Query=QueryName, Answers=the IP addresses in
//	                    QueryResults ("::ffff:" prefixes removed, other parts ignored)
//
// Other event ids are counted per id in [Stats].Skipped and skipped; they
// are not errors. In a syslog file, lines without a Sysmon <Event> (other
// programs' messages) are counted in [Stats].OtherLines and skipped.
//
// With [FormatAuto] (the default) each input's format is detected from its
// first record: a JSON object with a "type" member is native; one with an
// event id member (EventID, eventnum) or an "Event" object, or a line with
// an XML <Event>, declaration or <Events> tag, is Sysmon. Lines that decide
// nothing (other programs' syslog lines at the top of a syslog file) are
// held back, up to 256 of them, until a record decides; if none does the
// input is read as native, whose parser reports the lines.
//
// Sysmon's User is a name (or a domain\name); Event has no field for a user
// name, so only a numeric User, or "root", sets UID.
//
// # Bad input, strict and lenient
//
// A line that cannot be turned into a valid event is a [*ParseError]
// naming the file, the line (1-based; for an XML event spanning lines, the
// line where it starts) and the cause — malformed JSON or XML
// ([ErrMalformed]), a missing or bad field ([*FieldError], [ErrInvalid]),
// or an over-long line ([ErrLineTooLong]). In strict mode (the default)
// Next returns the first one and keeps returning it. In lenient mode
// ([WithLenient]) it is counted ([Stats].ParseErrors), kept ([Reader.Errors])
// and reading goes on. Nothing is dropped without being counted: every line
// is an event, a skipped blank or comment line, a counted skipped Sysmon
// event or non-event syslog line, or an error.
//
// # Several inputs
//
// [Open] of several files, or [Merge], yields the inputs' events merged by
// ts: a streaming k-way merge that holds one look-ahead event per input and
// returns the earliest; ties keep input order. Each input's format is
// detected on its own, so a Sysmon log can be replayed together with a
// native file of a detector's risk reports.
//
// Timestamps that go backwards inside one input are not re-sorted: events
// keep their file order, each such event is counted in [Stats].OutOfOrder,
// and the merge compares it by its own ts against the other inputs' next
// events. The merged stream is therefore sorted whenever every input is,
// and otherwise goes backwards exactly where an input does; consumers see
// each input's events in file order.
//
// # Writing and building
//
// [Writer] writes events in the native format (what `procwall monitor -o
// json` records). [Builder] assembles events in Go code for tests; its
// Source replays them and its WriteTo writes them as a native trace.
//
// # Lifecycle, concurrency and privileges
//
// Reading streams (1 GB traces are fine): memory is bounded by the longest
// line or multi-line XML event (8 MiB at most; longer ones are
// [ErrLineTooLong] errors) and, in lenient mode, by the kept errors. Work
// is linear in the input, also for XML events spanning many lines. The package starts no goroutines.
// A [Reader]'s Next must be called from one goroutine at a time; Close,
// Stats and Errors are safe from any goroutine, and Close makes Next return
// an error matching os.ErrClosed. Reading files needs no privileges beyond
// permission to open them.
package replay
