/*
 * cellmap_remap: maps a file over memory a typed array already views (MAP_SHARED | MAP_FIXED),
 * so that the batch pool of a loader's shared WebAssembly memory is also a file another process
 * can map: `serve`'s shared-memory transport then hands batches over without copying them.
 *
 * Hand-written because no npm package maps a file over existing memory (mmap packages return new
 * buffers, which the WebAssembly kernels cannot write into). Measured with `npm run bench --
 * serve` (std, 2 workers, warm): copying each batch into a slot file costs the server 1.4 ms of
 * CPU per sample (about 3 GB/s through pwrite into tmpfs), which halves the rate on 2 cores;
 * mapped, the copy is gone. Linux only; without it the transport copies.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>

static napi_value fail(napi_env env, const char* what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/*
 * remap(view: Uint8Array, fd: number): writes the view's bytes into file `fd` (from offset 0),
 * then maps the file over the view's memory. The view must be page aligned and nothing may
 * write to it meanwhile. Throws with errno's text on failure.
 */
static napi_value Remap(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_typedarray_type type; size_t length; void* data; napi_value ab; size_t offset;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, &ab, &offset) != napi_ok) { napi_throw_type_error(env, NULL, "expected a Uint8Array"); return NULL; }
  int32_t fd; napi_get_value_int32(env, argv[1], &fd);
  long page = sysconf(_SC_PAGESIZE);
  if (((uintptr_t)data) % page || length % page) { napi_throw_range_error(env, NULL, "view must be page aligned"); return NULL; }
  /* Keep what the memory holds. */
  size_t done = 0;
  while (done < length) { ssize_t n = pwrite(fd, (char*)data + done, length - done, done); if (n < 0) return fail(env, "pwrite"); done += n; }
  void* p = mmap(data, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) return fail(env, "mmap");
  napi_value r; napi_get_boolean(env, 1, &r); return r;
}

NAPI_MODULE_INIT() {
  napi_value fn; napi_create_function(env, "remap", NAPI_AUTO_LENGTH, Remap, NULL, &fn);
  napi_set_named_property(env, exports, "remap", fn);
  return exports;
}
