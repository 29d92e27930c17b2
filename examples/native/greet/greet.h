#ifndef GREET_H
#define GREET_H
/* greet returns a JSON document {"hello": NAME}; free it with free(). */
char *greet(const char *name);
#endif
