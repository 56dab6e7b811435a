# SPDX-License-Identifier: Apache-2.0
# lockferry_bpf_object(name src): build <name>.bpf.o with clang -target bpf, generate the
# libbpf skeleton <name>.skel.h with bpftool, and expose INTERFACE target <name>_skel.
# vmlinux.h comes from LOCKFERRY_VMLINUX_H, else is generated from the running kernel's BTF.

find_program(BPFTOOL_EXE NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)
find_program(BPF_CLANG_EXE NAMES clang clang-14 REQUIRED)

set(LOCKFERRY_VMLINUX_H "" CACHE FILEPATH "vmlinux.h to build the BPF programs against (default: generated from /sys/kernel/btf/vmlinux)")
set(LOCKFERRY_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${LOCKFERRY_BPF_GEN_DIR})

# Generated at configure time: a custom command's output in this directory would be invisible to
# the bpf/ subdirectory's rules with the Makefile generator.
if(LOCKFERRY_VMLINUX_H)
  configure_file(${LOCKFERRY_VMLINUX_H} ${LOCKFERRY_BPF_GEN_DIR}/vmlinux.h COPYONLY)
elseif(NOT EXISTS ${LOCKFERRY_BPF_GEN_DIR}/vmlinux.h)
  if(NOT EXISTS /sys/kernel/btf/vmlinux)
    message(FATAL_ERROR "This kernel has no BTF (/sys/kernel/btf/vmlinux): pass -DLOCKFERRY_VMLINUX_H=<path to a vmlinux.h> to build the BPF programs")
  endif()
  execute_process(
    COMMAND ${BPFTOOL_EXE} btf dump file /sys/kernel/btf/vmlinux format c
    OUTPUT_FILE ${LOCKFERRY_BPF_GEN_DIR}/vmlinux.h
    RESULT_VARIABLE _lf_vmlinux_rc)
  if(NOT _lf_vmlinux_rc EQUAL 0)
    file(REMOVE ${LOCKFERRY_BPF_GEN_DIR}/vmlinux.h)
    message(FATAL_ERROR "bpftool could not dump /sys/kernel/btf/vmlinux into vmlinux.h")
  endif()
  message(STATUS "Generated vmlinux.h from /sys/kernel/btf/vmlinux")
endif()

string(TOLOWER ${CMAKE_SYSTEM_PROCESSOR} _lf_arch)
if(_lf_arch MATCHES "x86_64|amd64")
  set(LOCKFERRY_BPF_ARCH x86)
elseif(_lf_arch MATCHES "aarch64|arm64")
  set(LOCKFERRY_BPF_ARCH arm64)
else()
  set(LOCKFERRY_BPF_ARCH ${_lf_arch})
endif()

function(lockferry_bpf_object name src)
  set(obj ${LOCKFERRY_BPF_GEN_DIR}/${name}.bpf.o)
  set(skel ${LOCKFERRY_BPF_GEN_DIR}/${name}.skel.h)
  file(GLOB _bpf_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/bpf/*.bpf.h ${PROJECT_SOURCE_DIR}/include/lockferry/events.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG_EXE} -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${LOCKFERRY_BPF_ARCH}
            -I${LOCKFERRY_BPF_GEN_DIR} -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/bpf
            -c ${src} -o ${obj}
    DEPENDS ${src} ${_bpf_headers} ${LOCKFERRY_BPF_GEN_DIR}/vmlinux.h
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL_EXE} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${LOCKFERRY_BPF_GEN_DIR})
endfunction()
