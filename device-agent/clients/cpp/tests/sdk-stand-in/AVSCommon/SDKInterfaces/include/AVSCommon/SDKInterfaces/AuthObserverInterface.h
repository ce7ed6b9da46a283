// Stand-in written by avs-pair from the AVS Device SDK's documentation (see tests/sdk-stand-in/README.md).
// With AVS_PAIR_STAND_IN_FIRST_SDK_RELEASES defined (tests/sdk-legacy-stand-in does), the first releases'
// shape: four states, Error::NO_ERROR and eight errors.
#ifndef ALEXA_CLIENT_SDK_AVSCOMMON_SDKINTERFACES_INCLUDE_AVSCOMMON_SDKINTERFACES_AUTHOBSERVERINTERFACE_H_
#define ALEXA_CLIENT_SDK_AVSCOMMON_SDKINTERFACES_INCLUDE_AVSCOMMON_SDKINTERFACES_AUTHOBSERVERINTERFACE_H_

namespace alexaClientSDK {
namespace avsCommon {
namespace sdkInterfaces {

/// Observes the authorization state of an AuthDelegateInterface.
class AuthObserverInterface {
public:
#ifdef AVS_PAIR_STAND_IN_FIRST_SDK_RELEASES
    enum class State { UNINITIALIZED, REFRESHED, EXPIRED, UNRECOVERABLE_ERROR };
#else
    enum class State { UNINITIALIZED, REFRESHED, EXPIRED, UNRECOVERABLE_ERROR, AUTHORIZING };
#endif
    enum class Error {
#ifdef AVS_PAIR_STAND_IN_FIRST_SDK_RELEASES
        NO_ERROR,
#else
        SUCCESS,
#endif
        UNKNOWN_ERROR,
        AUTHORIZATION_FAILED,
        UNAUTHORIZED_CLIENT,
        SERVER_ERROR,
        INVALID_REQUEST,
#ifndef AVS_PAIR_STAND_IN_FIRST_SDK_RELEASES
        INVALID_VALUE,
#endif
        AUTHORIZATION_EXPIRED,
        UNSUPPORTED_GRANT_TYPE,
#ifndef AVS_PAIR_STAND_IN_FIRST_SDK_RELEASES
        INVALID_CODE_PAIR,
        AUTHORIZATION_PENDING,
        SLOW_DOWN,
        INTERNAL_ERROR,
        INVALID_CBL_CLIENT_ID,
#endif
    };
    virtual ~AuthObserverInterface() = default;
    virtual void onAuthStateChange(State newState, Error error) = 0;
};

}  // namespace sdkInterfaces
}  // namespace avsCommon
}  // namespace alexaClientSDK

#endif
