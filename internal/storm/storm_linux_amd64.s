#include "textflag.h"

// func vforkExit(code uintptr) (pid uintptr, errno uintptr)
TEXT ·vforkExit(SB),NOSPLIT,$0-24
	MOVQ	code+0(FP), R12
	MOVQ	$0x4F11, DI	// CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_VFORK|SIGCHLD
	MOVQ	$0, SI
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$56, AX	// SYS_clone
	SYSCALL
	CMPQ	AX, $0
	JNE	parent
	// The child: leave at once, touching nothing.
	MOVQ	R12, DI
	MOVQ	$231, AX	// SYS_exit_group
	SYSCALL
	HLT
parent:
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	NEGQ	AX
	MOVQ	$0, pid+8(FP)
	MOVQ	AX, errno+16(FP)
	RET
ok:
	MOVQ	AX, pid+8(FP)
	MOVQ	$0, errno+16(FP)
	RET
