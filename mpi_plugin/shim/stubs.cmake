# Generates stubs.S from mpi_functions.txt: for every function X, a weak
# MPI_X that jumps to PMPI_X, and a weak PMPI_X that reports X as not
# supported. The shim's own (strong) PMPI_X take precedence at link time.
file(STRINGS "${LIST}" names REGEX "^MPI_")
set(out "# Generated from mpi_functions.txt by stubs.cmake; do not edit.\n.text\n")
foreach(name IN LISTS names)
  string(APPEND out
    ".weak P${name}\n.type P${name},@function\nP${name}:\n  lea .Lname_${name}(%rip), %rdi\n  jmp ckpt_mpi_unsupported@PLT\n"
    ".weak ${name}\n.type ${name},@function\n${name}:\n  jmp P${name}@PLT\n"
    ".section .rodata\n.Lname_${name}: .asciz \"${name}\"\n.text\n")
endforeach()
string(APPEND out ".section .note.GNU-stack,\"\",@progbits\n")
file(WRITE "${OUT}.tmp" "${out}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
