/* A tiny shared library: built once per CPU into the classified jars. */
int layerpack_hello(void) { return 42; }
