/*
 * The seccomp filter, built as classic BPF from the syscall spec.
 *
 * Layout: arch check, x32 check, nr > max_nr check, the hand-off exception, then a binary search tree on nr, then
 * the action blocks.  Inner nodes jump to their left half through a JA (32-bit offset), and
 * leaves (runs of at most LEAF_RUN entries) are "JEQ nr, +0, +1; JA block", so conditional
 * jumps never exceed 1 whatever the size of the spec.  A block (ending in a RET) exists
 * once per distinct (action, fd_mask), which keeps a full 450-entry spec far below
 * BPF_MAXINSNS.
 */
#include <errno.h>
#include <linux/audit.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "tracer.h"

#define LEAF_RUN 4
#define BLOCK_MAX 64

struct program {
    struct sock_filter *code;
    size_t length;
    size_t capacity;
    int failed;
};

static void emit(struct program *program, struct sock_filter instruction)
{
    if (program->length == program->capacity) {
        size_t capacity = program->capacity ? program->capacity * 2 : 256;
        struct sock_filter *code = realloc(program->code, capacity * sizeof(*code));
        if (!code) {
            program->failed = 1;
            return;
        }
        program->code = code;
        program->capacity = capacity;
    }
    program->code[program->length++] = instruction;
}

static struct sock_filter stmt(unsigned short code, unsigned int k)
{
    return (struct sock_filter)BPF_STMT(code, k);
}

static struct sock_filter jump(unsigned short code, unsigned int k, unsigned char jt,
                               unsigned char jf)
{
    return (struct sock_filter)BPF_JUMP(code, k, jt, jf);
}

#define LOAD_ARG_LOW(i) stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))
#define LOAD_ARG_HIGH(i) \
    stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]) + 4)
#define RET(value) stmt(BPF_RET | BPF_K, (value))
#define RET_ENOSYS RET(SECCOMP_RET_ERRNO | ENOSYS)

/* The block of one syscall; returns its length (<= BLOCK_MAX).  Every block ends in a RET,
 * so the accumulator (nr) may be clobbered inside it. */
static size_t build_block(const struct spec_entry *entry, int fd_base,
                          struct sock_filter *block)
{
    size_t n = 0;
    switch (entry->action) {
    case ACTION_TRAP:
    case ACTION_TRAP_CWD:
    case ACTION_TRAP_VIRTUAL:
    case ACTION_TRAP_SOCKADDR:
    case ACTION_TRAP_LOWFD:
    case ACTION_PYTHON:
        block[n++] = RET(SECCOMP_RET_USER_NOTIF);
        break;
    case ACTION_ENOSYS:
        block[n++] = RET_ENOSYS;
        break;
    case ACTION_TRAP_FD: {
        int fds = __builtin_popcount(entry->fd_mask & 0x3f);
        int remaining = fds;
        if (entry->value_arg >= 0) { /* that value: to the USER_NOTIF after the fd tests */
            block[n++] = LOAD_ARG_LOW(entry->value_arg);
            block[n++] = jump(BPF_JMP | BPF_JEQ | BPF_K, entry->value,
                              (unsigned char)(3 * fds + 1), 0);
        }
        for (int i = 0; i < 6; i++) {
            if (!(entry->fd_mask & (1 << i)))
                continue;
            remaining--;
            /* Signed view of the low 32 bits: negative fds (AT_FDCWD, -1) are not in R. */
            block[n++] = LOAD_ARG_LOW(i);
            block[n++] = jump(BPF_JMP | BPF_JSET | BPF_K, 0x80000000u, 1, 0);
            block[n++] = jump(BPF_JMP | BPF_JGE | BPF_K, (unsigned int)fd_base,
                              (unsigned char)(3 * remaining + 1), 0);
        }
        block[n++] = RET(SECCOMP_RET_ALLOW);
        if (fds || entry->value_arg >= 0)
            block[n++] = RET(SECCOMP_RET_USER_NOTIF);
        break;
    }
    case ACTION_DUMPABLE:
        /* prctl(PR_SET_DUMPABLE, 0) -> 0 without running: stays readable by process_vm_readv. */
        block[n++] = LOAD_ARG_LOW(0);
        block[n++] = jump(BPF_JMP | BPF_JEQ | BPF_K, PR_SET_DUMPABLE, 0, 5);
        block[n++] = LOAD_ARG_LOW(1);
        block[n++] = jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3);
        block[n++] = LOAD_ARG_HIGH(1);
        block[n++] = jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
        block[n++] = RET(SECCOMP_RET_ERRNO | 0);
        block[n++] = RET(SECCOMP_RET_ALLOW);
        break;
    default:
        block[n++] = RET(SECCOMP_RET_ALLOW);
        break;
    }
    return n;
}

/* Blocks are shared between syscalls with the same action and fd mask, and emitted after
 * the tree; each leaf entry is "JEQ nr; JA block", the JA patched once blocks are placed. */
struct block_reference {
    size_t jump_at; /* index of the JA */
    int action;
    int fd_mask;
    int value_arg;
    unsigned int value;
};

struct tree_builder {
    struct program *program;
    const struct spec_entry *spec;
    int fd_base;
    struct block_reference *references;
    size_t reference_count;
};

/* Entries [lo, hi) sorted by nr; the accumulator holds nr on entry. */
static void build_tree(struct tree_builder *builder, size_t lo, size_t hi)
{
    struct program *program = builder->program;
    if (hi - lo <= LEAF_RUN) {
        for (size_t i = lo; i < hi; i++) {
            const struct spec_entry *entry = &builder->spec[i];
            emit(program, jump(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)entry->nr, 0, 1));
            struct block_reference *reference = &builder->references[builder->reference_count++];
            reference->jump_at = program->length;
            reference->action = entry->action;
            reference->fd_mask = entry->action == ACTION_TRAP_FD ? entry->fd_mask : 0;
            reference->value_arg = entry->action == ACTION_TRAP_FD ? entry->value_arg : -1;
            reference->value = reference->value_arg >= 0 ? entry->value : 0;
            emit(program, stmt(BPF_JMP | BPF_JA, 0));
        }
        emit(program, RET(SECCOMP_RET_ALLOW));
        return;
    }
    size_t mid = lo + (hi - lo) / 2;
    emit(program, jump(BPF_JMP | BPF_JGE | BPF_K, (unsigned int)builder->spec[mid].nr, 1, 0));
    size_t to_left = program->length;
    emit(program, stmt(BPF_JMP | BPF_JA, 0));
    build_tree(builder, mid, hi);
    if (!program->failed)
        program->code[to_left].k = (unsigned int)(program->length - to_left - 1);
    build_tree(builder, lo, mid);
}

/* Emits each distinct block once and points the leaves' JAs at it. */
static void place_blocks(struct tree_builder *builder)
{
    struct program *program = builder->program;
    for (size_t i = 0; i < builder->reference_count && !program->failed; i++) {
        struct block_reference *reference = &builder->references[i];
        size_t start = program->length;
        int found = 0;
        for (size_t j = 0; j < i; j++) {
            struct block_reference *earlier = &builder->references[j];
            if (earlier->action == reference->action && earlier->fd_mask == reference->fd_mask &&
                earlier->value_arg == reference->value_arg && earlier->value == reference->value) {
                /* The earlier JA was patched: its target is that block's start. */
                start = earlier->jump_at + 1 + program->code[earlier->jump_at].k;
                found = 1;
                break;
            }
        }
        if (!found) {
            struct spec_entry entry = {.action = reference->action, .fd_mask = reference->fd_mask,
                                       .value_arg = reference->value_arg,
                                       .value = reference->value};
            struct sock_filter block[BLOCK_MAX];
            size_t length = build_block(&entry, builder->fd_base, block);
            for (size_t j = 0; j < length; j++)
                emit(program, block[j]);
        }
        if (!program->failed)
            program->code[reference->jump_at].k = (unsigned int)(start - reference->jump_at - 1);
    }
}

static int compare_nr(const void *a, const void *b)
{
    const struct spec_entry *x = a, *y = b;
    return (x->nr > y->nr) - (x->nr < y->nr);
}

struct sock_filter *filter_build(struct spec_entry *spec, size_t count, int fd_base,
                                 int max_nr, uint64_t handoff_cookie, unsigned short *out_len)
{
    struct program program = {0};
    qsort(spec, count, sizeof(*spec), compare_nr);
    for (size_t i = 1; i < count; i++) {
        if (spec[i].nr == spec[i - 1].nr) {
            errno = EINVAL;
            return NULL;
        }
    }
    emit(&program, stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
    emit(&program, jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
    emit(&program, RET_ENOSYS);
    emit(&program, stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
    emit(&program, jump(BPF_JMP | BPF_JSET | BPF_K, 0x40000000u, 0, 1)); /* x32 ABI */
    emit(&program, RET_ENOSYS);
    emit(&program, jump(BPF_JMP | BPF_JGT | BPF_K, (unsigned int)max_nr, 0, 1));
    emit(&program, RET_ENOSYS);
    /* The command's own sendmsg of the listener, marked by the cookie in its unused 4th
     * argument, must run whatever the spec says: nobody listens yet. */
    emit(&program, jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_sendmsg, 0, 5));
    emit(&program, LOAD_ARG_LOW(3));
    emit(&program, jump(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)handoff_cookie, 0, 3));
    emit(&program, LOAD_ARG_HIGH(3));
    emit(&program, jump(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)(handoff_cookie >> 32), 0, 1));
    emit(&program, RET(SECCOMP_RET_ALLOW));
    emit(&program, stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
    struct tree_builder builder = {&program, spec, fd_base, NULL, 0};
    builder.references = calloc(count ? count : 1, sizeof(*builder.references));
    if (!builder.references) {
        errno = ENOMEM;
        return NULL;
    }
    build_tree(&builder, 0, count);
    place_blocks(&builder);
    free(builder.references);
    if (program.failed) {
        free(program.code);
        errno = ENOMEM;
        return NULL;
    }
    if (program.length > BPF_MAXINSNS) {
        free(program.code);
        errno = E2BIG;
        return NULL;
    }
    *out_len = (unsigned short)program.length;
    return program.code;
}
