#include <stdio.h>

int main(void) {
  puts("hello from a binary built with tools that are no longer in the image");
  return 0;
}
