// Package fanotify enforces rule-engine verdicts with Linux fanotify
// permission events: FAN_OPEN_EXEC_PERM for program execution on watched
// files, directories or mounts, and FAN_OPEN_PERM for opening watched
// (self-protection, persistence) paths. Each event is turned into a
// [rules.Request] and answered allow or deny by a [JudgeFunc] — usually
// [EngineJudge] over a rules.Engine — within Config.Timeout; when the
// judge does not answer in time the Guard answers by its fail-open or
// fail-closed default, so a process is never left waiting on procwall.
//
// # Never deadlocking on its own files
//
// Events caused by procwall's own process are allowed at once by the
// reading loop, before any judging, and judging runs apart from the
// reading loop: a judge that opens a watched file (a verifier reading a
// signature, the engine hashing an executable) raises an event that the
// loop answers immediately. Executables are hashed through the
// descriptor the kernel hands over, which raises no new event.
//
// The execution of a program that procwall's own process starts is
// allowed unjudged too: Go starts programs with vfork, which holds the
// starting thread until the child's exec is answered, and the Go runtime
// cannot stop the world for a garbage collection meanwhile — judging such
// an exec could hang the agent. The check (the process's parent is us and
// it still runs our executable) is made before anything else is done; still, an agent embedding a Guard should not
// start programs from locations it guards for execution.
//
// # Lifecycle, privileges, concurrency
//
// [Open] needs CAP_SYS_ADMIN and a kernel with fanotify permission events
// (CONFIG_FANOTIFY_ACCESS_PERMISSIONS; FAN_OPEN_EXEC_PERM since 5.0); off
// Linux it returns an error wrapping source.ErrNotSupported. [Guard.Serve]
// blocks its caller, reading events and judging each in a goroutine of its
// own (at most Config.MaxInFlight at once); it returns an error wrapping
// os.ErrClosed after [Guard.Close], which may be called from any
// goroutine. Serve waits for its judging goroutines' answers before it
// returns. Closing the group lets the kernel allow any event still
// pending. Mark only what you mean to guard: a mount mark on / judges
// every execution on the machine.
package fanotify
