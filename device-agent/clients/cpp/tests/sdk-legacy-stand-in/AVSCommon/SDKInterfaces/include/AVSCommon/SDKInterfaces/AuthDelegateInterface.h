// The first AVS Device SDK releases' AuthDelegateInterface.h (no onAuthFailure): the stand-in in
// tests/sdk-stand-in with that shape selected. See ../../../../../../sdk-stand-in/README.md.
#define AVS_PAIR_STAND_IN_FIRST_SDK_RELEASES 1
#include "../../../../../../sdk-stand-in/AVSCommon/SDKInterfaces/include/AVSCommon/SDKInterfaces/AuthDelegateInterface.h"
