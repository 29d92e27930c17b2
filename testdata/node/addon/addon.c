// A Node-API addon: add(a, b) and arch(), the CPU it was compiled for.
#include <node_api.h>

static napi_value add(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2];
  double a = 0, b = 0;
  napi_value result;
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  napi_get_value_double(env, args[0], &a);
  napi_get_value_double(env, args[1], &b);
  napi_create_double(env, a + b, &result);
  return result;
}

static napi_value arch(napi_env env, napi_callback_info info) {
#if defined(__aarch64__)
  const char *name = "aarch64";
#elif defined(__x86_64__)
  const char *name = "x86_64";
#else
  const char *name = "other";
#endif
  napi_value result;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "add", NAPI_AUTO_LENGTH, add, NULL, &fn);
  napi_set_named_property(env, exports, "add", fn);
  napi_create_function(env, "arch", NAPI_AUTO_LENGTH, arch, NULL, &fn);
  napi_set_named_property(env, exports, "arch", fn);
  return exports;
}
