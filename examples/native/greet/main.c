#include <stdio.h>
#include <stdlib.h>
#include "greet.h"

int main(int argc, char **argv) {
	char *s = greet(argc > 1 ? argv[1] : "world");
	puts(s);
	free(s);
	return 0;
}
