# Installation and the Debian package. Components:
#   runtime  posrelay and posrelay-terminal (stripped), /etc/posrelay/posrelay.conf (generated
#            by `posrelay --print-example-config`), the systemd unit, man pages (generated
#            from --help), docs. This is the .deb's content and the container's.
#   debug    the debug info of the runtime binaries, lib/debug/.build-id/xx/yyyy.debug.
#   tools    midtrans-sim and posrelay-terminal-load (test and load tools).
# Paths are the package's when CMAKE_INSTALL_PREFIX is /usr (the presets' default): the config
# goes to /etc. Install elsewhere with DESTDIR (DESTDIR=/tmp/x cmake --install build/server
# --component runtime); --prefix at install time does not move the config or the unit's
# ExecStart, which are fixed when configuring.
if(NOT TARGET posrelay OR POSRELAY_FUZZ)
  return()
endif()
include(GNUInstallDirs)

set(pkg_out ${PROJECT_BINARY_DIR}/packaging)
set(unit_dir lib/systemd/system)
set(conf_dir ${CMAKE_INSTALL_FULL_SYSCONFDIR}/posrelay)  # /etc/posrelay for prefix /usr
set(doc_dir ${CMAKE_INSTALL_DATADIR}/doc/posrelay)

# Generated files: the example config and the man pages come from the built binaries.
set(POSRELAY_UNIT_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
configure_file(${PROJECT_SOURCE_DIR}/deploy/posrelay.service.in ${pkg_out}/posrelay.service @ONLY)
set(help2roff ${PROJECT_SOURCE_DIR}/deploy/help2roff.sh)
add_custom_command(
  OUTPUT ${pkg_out}/posrelay.conf ${pkg_out}/posrelay.1 ${pkg_out}/posrelay-terminal.1
  COMMAND sh -c "\"$1\" --print-example-config > \"$2\"" sh $<TARGET_FILE:posrelay>
          ${pkg_out}/posrelay.conf
  COMMAND sh -c "\"$1\" \"$2\" posrelay \"Midtrans payment-notification relay\" \"$3\" > \"$4\""
          sh ${help2roff} $<TARGET_FILE:posrelay> ${PROJECT_VERSION} ${pkg_out}/posrelay.1
  COMMAND sh -c "\"$1\" \"$2\" posrelay-terminal \"posrelay terminal client\" \"$3\" > \"$4\""
          sh ${help2roff} $<TARGET_FILE:posrelay-terminal> ${PROJECT_VERSION}
          ${pkg_out}/posrelay-terminal.1
  DEPENDS posrelay posrelay-terminal ${help2roff}
  COMMENT "Generating posrelay.conf and man pages from the binaries"
  VERBATIM)
add_custom_target(posrelay_install_files ALL DEPENDS ${pkg_out}/posrelay.conf)

# runtime
install(TARGETS posrelay posrelay-terminal RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT runtime)
# Stripped as installed (the build tree keeps its debug info; the debug component has it).
find_program(POSRELAY_OBJCOPY NAMES objcopy REQUIRED)
foreach(bin posrelay posrelay-terminal)
  install(CODE "execute_process(COMMAND ${POSRELAY_OBJCOPY} --strip-debug --strip-unneeded
                  \"\$ENV{DESTDIR}${CMAKE_INSTALL_FULL_BINDIR}/${bin}\" COMMAND_ERROR_IS_FATAL ANY)"
          COMPONENT runtime)
  # debug: objcopy --only-keep-debug of the build-tree binary, named by its build id.
  install(CODE "
    execute_process(COMMAND readelf -n \"$<TARGET_FILE:${bin}>\" OUTPUT_VARIABLE notes
                    COMMAND_ERROR_IS_FATAL ANY)
    string(REGEX MATCH \"Build ID: ([0-9a-f]+)\" _ \"\${notes}\")
    set(id \"\${CMAKE_MATCH_1}\")
    if(NOT id)
      message(FATAL_ERROR \"${bin} has no build id\")
    endif()
    string(SUBSTRING \"\${id}\" 0 2 head)
    string(SUBSTRING \"\${id}\" 2 -1 tail)
    set(dir \"\$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/lib/debug/.build-id/\${head}\")
    file(MAKE_DIRECTORY \"\${dir}\")
    message(STATUS \"Installing: \${dir}/\${tail}.debug\")
    execute_process(COMMAND ${POSRELAY_OBJCOPY} --only-keep-debug \"$<TARGET_FILE:${bin}>\"
                    \"\${dir}/\${tail}.debug\" COMMAND_ERROR_IS_FATAL ANY)"
          COMPONENT debug)
endforeach()
install(FILES ${pkg_out}/posrelay.conf DESTINATION ${conf_dir} PERMISSIONS OWNER_READ OWNER_WRITE
        GROUP_READ WORLD_READ COMPONENT runtime)
# Secrets live here, one file per credential (see the unit); root only.
install(DIRECTORY DESTINATION ${conf_dir}/credentials DIRECTORY_PERMISSIONS OWNER_READ
        OWNER_WRITE OWNER_EXECUTE COMPONENT runtime)
install(FILES ${pkg_out}/posrelay.service DESTINATION ${unit_dir} COMPONENT runtime)
install(FILES ${pkg_out}/posrelay.1 ${pkg_out}/posrelay-terminal.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/CHANGELOG.md
        DESTINATION ${doc_dir} COMPONENT runtime)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/proto-docs DESTINATION ${doc_dir} COMPONENT runtime)
# The browser POS page (--pos-page /usr/share/posrelay/pos) with the JS library it imports
# (clients/pos/terminal is a symbolic link to clients/js/src in the source tree).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/clients/pos/ DESTINATION ${CMAKE_INSTALL_DATADIR}/posrelay/pos
        COMPONENT runtime PATTERN terminal EXCLUDE)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/clients/js/src/
        DESTINATION ${CMAKE_INSTALL_DATADIR}/posrelay/pos/terminal COMPONENT runtime)
if(EXISTS ${PROJECT_SOURCE_DIR}/RUNBOOK.md)
  install(FILES ${PROJECT_SOURCE_DIR}/RUNBOOK.md DESTINATION ${doc_dir} COMPONENT runtime)
endif()

# tools
if(TARGET midtrans-sim)
  install(TARGETS midtrans-sim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT tools)
endif()
install(TARGETS posrelay-terminal-load RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT tools)

# The .deb: `cpack -G DEB` in the build directory -> posrelay_VERSION_amd64.deb (runtime only).
set(CPACK_PACKAGE_NAME posrelay)
set(CPACK_PACKAGE_VENDOR posrelay)
set(CPACK_PACKAGE_CONTACT "posrelay maintainers <posrelay@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Midtrans payment-notification relay for POS terminals")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_SET_DESTDIR ON)  # /etc/posrelay is an absolute destination
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_COMPONENTS_ALL runtime)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_DEBIAN_PACKAGE_NAME posrelay)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The default configuration runs an embedded redis-server; --redis-url uses an external
# Redis instead, so it is a Recommends (installed by default, skippable), not a Depends.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS redis-server)
set(CPACK_DEBIAN_PACKAGE_DEPENDS adduser)
# The config is a conffile: an upgrade keeps the admin's edits.
file(WRITE ${pkg_out}/conffiles "${conf_dir}/posrelay.conf\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${pkg_out}/conffiles ${PROJECT_SOURCE_DIR}/deploy/debian/postinst ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
    ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
