#include <stdlib.h>
#include <jansson.h>
#include "greet.h"

char *greet(const char *name) {
	json_t *doc = json_pack("{s:s}", "hello", name);
	char *out = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(doc);
	return out;
}
