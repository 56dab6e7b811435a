# SPDX-License-Identifier: Apache-2.0
# Runs at install time (cmake --install, make install, cpack) with that run's prefix and DESTDIR:
# installs the systemd unit naming <prefix>/sbin/lockferryd, and the default configuration as
# /etc/lockferry/lockferry.toml without replacing one that is already there.

# A system prefix keeps its configuration in /etc; any other prefix (a test root, /opt/...)
# gets <prefix>/etc so nothing outside the prefix is touched.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr" OR CMAKE_INSTALL_PREFIX STREQUAL "/usr/local")
  set(etc_dir "/etc")
else()
  set(etc_dir "${CMAKE_INSTALL_PREFIX}/etc")
endif()

set(SBINDIR "${CMAKE_INSTALL_PREFIX}/sbin")
configure_file("${LOCKFERRY_PACKAGING_SOURCE_DIR}/systemd/lockferryd.service.in"
               "${LOCKFERRY_PACKAGING_BINARY_DIR}/lockferryd.service" @ONLY)
# systemd reads units from /usr/lib/systemd/system and /usr/local/lib/systemd/system.
file(INSTALL "${LOCKFERRY_PACKAGING_BINARY_DIR}/lockferryd.service"
     DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

set(config "$ENV{DESTDIR}${etc_dir}/lockferry/lockferry.toml")
if(EXISTS "${config}")
  message(STATUS "Keeping: ${config} (the shipped default is in "
                 "${CMAKE_INSTALL_PREFIX}/share/lockferry/lockferry.toml)")
else()
  file(INSTALL "${LOCKFERRY_PACKAGING_SOURCE_DIR}/lockferry.toml"
       DESTINATION "${etc_dir}/lockferry"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()
