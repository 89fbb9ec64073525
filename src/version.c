#include "cnn.h"

#define CNN_STR2(x) #x
#define CNN_STR(x) CNN_STR2(x)

int cnn_version(void) { return CNN_VERSION_NUMBER; }

const char *cnn_version_string(void)
{
    return CNN_STR(CNN_VERSION_MAJOR) "." CNN_STR(CNN_VERSION_MINOR) "." CNN_STR(CNN_VERSION_PATCH);
}
