#include <ruby.h>

/* The CPU this extension was compiled for, as the compiler saw it. */
#if defined(__x86_64__)
#define LP_MACHINE "x86_64"
#elif defined(__aarch64__)
#define LP_MACHINE "aarch64"
#else
#define LP_MACHINE "other"
#endif

static VALUE lp_add(VALUE self, VALUE a, VALUE b) {
  return LONG2NUM(NUM2LONG(a) + NUM2LONG(b));
}

static VALUE lp_machine(VALUE self) {
  return rb_str_new_cstr(LP_MACHINE);
}

void Init_lp_native(void) {
  VALUE m = rb_define_module("LpNative");
  rb_define_module_function(m, "add", lp_add, 2);
  rb_define_module_function(m, "machine", lp_machine, 0);
}
